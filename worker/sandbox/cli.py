"""`marketo-worker sandbox`: parse the command line and serve the sandbox until SIGTERM/SIGINT.

The first stdout line is `listening on http://HOST:PORT`, which tools wait for before calling.
"""

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from worker.sandbox.bulk_export import MB, ExportConfig
from worker.sandbox.bulk_import import DEFAULT_ROWS_PER_S
from worker.sandbox.faults import Faults
from worker.sandbox.gate import LimitConfig
from worker.sandbox.identity import ApiUser
from worker.sandbox.limits import QuotaDay
from worker.sandbox.server import Sandbox, SandboxConfig, build_app, make_runner
from worker.sandbox.store import StateFileError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="marketo-worker sandbox",
        description=__doc__,
        epilog="exit codes: 0 stopped by SIGTERM or SIGINT (state file saved); 1 cannot listen "
        "(e.g. the port is taken); 2 usage error or unusable --state-file",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    p.add_argument("--client-id", default=os.environ.get("MARKETO_CLIENT_ID"))
    p.add_argument("--client-secret", default=os.environ.get("MARKETO_CLIENT_SECRET"))
    p.add_argument(
        "--api-user",
        action="append",
        metavar="CLIENT_ID:SECRET:USER_ID",
        help="another custom service (another integration), its calls counted under USER_ID "
        "in the usage stats (repeatable)",
    )
    p.add_argument("--token-ttl-s", type=float, default=3600.0)
    p.add_argument("--strict-auth", action="store_true", help="refuse access_token parameters")
    p.add_argument("--folder", action="append", help="a list folder to create (repeatable)")
    p.add_argument("--state-file", type=Path, help="load at start, save at stop")
    limits = p.add_argument_group("limits (0 turns one off)")
    limits.add_argument("--calls-per-window", type=int, default=100)
    limits.add_argument("--window-s", type=float, default=20.0)
    limits.add_argument("--concurrency", type=int, default=10)
    limits.add_argument("--daily-quota", type=int, default=50_000)
    limits.add_argument("--quota-tz", default="America/Chicago", help="Etc/GMT+6 = fixed UTC-6")
    limits.add_argument("--quota-day-s", type=float, default=0.0, help="quota day length (tests)")
    limits.add_argument("--no-limits", action="store_true", help="turn off window, 615 and 607")
    limits.add_argument(
        "--count-rejections", action="store_true", help="606/607/615 answers count too"
    )
    bulk_import = p.add_argument_group("bulk import")
    bulk_import.add_argument(
        "--bulk-rows-per-s",
        type=float,
        default=DEFAULT_ROWS_PER_S,
        help="rows a second each of the 2 running imports processes",
    )
    extract = p.add_argument_group("bulk extract")
    defaults = ExportConfig()
    extract.add_argument(
        "--bulk-export-rows-per-s",
        type=float,
        default=defaults.rows_per_s,
        help="export processing speed (0 = instant)",
    )
    extract.add_argument(
        "--bulk-status-interval-s",
        type=float,
        default=defaults.status_interval_s,
        help="export status refresh interval (0 = live)",
    )
    extract.add_argument(
        "--bulk-export-daily-mb",
        type=float,
        default=defaults.daily_bytes / MB,
        help="daily export file allocation in MB of 1,000,000 bytes (0 = off)",
    )
    faults = p.add_argument_group("fault injection")
    faults.add_argument("--latency-ms", type=float, default=0.0)
    faults.add_argument("--latency-jitter-ms", type=float, default=0.0)
    for code in ("http-500", "http-502", "604", "608", "611"):
        faults.add_argument(f"--p-{code}", type=float, default=0.0, help=f"probability of {code}")
    faults.add_argument("--storm-606-s", type=float, default=0.0, help="606 storm at start")
    faults.add_argument("--seed", type=int, help="seed for latency and random faults")
    return p


def config_from(args: argparse.Namespace, now_s: float) -> SandboxConfig:
    """Build the sandbox configuration from parsed arguments."""
    off = args.no_limits
    limits = LimitConfig(
        calls_per_window=0 if off else args.calls_per_window,
        window_s=args.window_s,
        concurrency=0 if off else args.concurrency,
        daily_quota=0 if off else args.daily_quota,
        quota_day=QuotaDay(args.quota_tz, args.quota_day_s, time.time()),
        count_rejections=args.count_rejections,
    )
    faults = Faults(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        p_http_500=args.p_http_500,
        p_http_502=args.p_http_502,
        p_604=args.p_604,
        p_608=args.p_608,
        p_611=args.p_611,
        storm_until_s=now_s + args.storm_606_s if args.storm_606_s > 0 else 0.0,
    )
    return SandboxConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_s=args.token_ttl_s,
        strict_auth=args.strict_auth,
        folders=tuple(args.folder or ["Audiences"]),
        state_file=args.state_file,
        limits=limits,
        faults=faults,
        seed=args.seed,
        bulk_rows_per_s=args.bulk_rows_per_s,
        bulk_export=ExportConfig(
            rows_per_s=args.bulk_export_rows_per_s,
            status_interval_s=args.bulk_status_interval_s,
            daily_bytes=int(args.bulk_export_daily_mb * MB),
        ),
        api_users=tuple(api_user(spec) for spec in args.api_user or ()),
    )


def api_user(spec: str) -> ApiUser:
    """`CLIENT_ID:SECRET:USER_ID` (a user id holds no colon; a secret may) as an ApiUser."""
    head, _, user_id = spec.rpartition(":")
    client_id, _, secret = head.partition(":")
    if not (client_id and secret and user_id):
        raise ValueError(f"--api-user {spec.split(':')[0]}:...: give CLIENT_ID:SECRET:USER_ID")
    return ApiUser(client_id, secret, user_id)


async def serve(
    config: SandboxConfig, host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Serve until SIGTERM or SIGINT, then save the state file."""
    sandbox = Sandbox(config)
    runner = make_runner(build_app(sandbox))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        on_ready(f"http://{host}:{bound_port}")
        await stop.wait()
    finally:
        sandbox.save()
        await runner.cleanup()


def _announce(url: str) -> None:
    print(f"listening on {url}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.client_id or not args.client_secret:
        parser.error("--client-id and --client-secret (or MARKETO_CLIENT_ID/SECRET) are required")
    try:
        QuotaDay(args.quota_tz).label(0.0)
    except (KeyError, ValueError):
        parser.error(f"unknown --quota-tz {args.quota_tz!r}")
    # An import needs a speed (it advances row by row); an export's 0 means instant or off.
    if args.bulk_rows_per_s <= 0:
        parser.error("--bulk-rows-per-s must be positive")
    for flag in ("bulk_export_rows_per_s", "bulk_status_interval_s", "bulk_export_daily_mb"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must be 0 or more")
    if args.state_file is not None:
        _check_state_folder(parser, args.state_file)
    try:
        config = config_from(args, time.monotonic())
    except ValueError as error:
        parser.error(str(error))
    try:
        asyncio.run(serve(config, args.host, args.port, _announce))
    except StateFileError as error:
        print(f"marketo-worker sandbox: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"marketo-worker sandbox: {error}", file=sys.stderr)
        return 1
    return 0


def _check_state_folder(parser: argparse.ArgumentParser, path: Path) -> None:
    """Refuse at start a state file that could not be written at stop (the state would be lost)."""
    folder = path.parent
    if not folder.is_dir():
        parser.error(f"--state-file {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        parser.error(f"--state-file {path}: the folder {folder} is not writable")
    if path.is_dir():
        parser.error(f"--state-file {path}: is a folder, not a file")
