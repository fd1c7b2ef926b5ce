"""A real single-node Apache Kafka 4.x broker from Maven Central jars, for tests and the demo.

Resolves the jars once (Maven, cached under `.kafka/`), formats KRaft storage, starts one
combined broker+controller on 127.0.0.1, waits until it really serves, and stops it.
Never used in production; how to run it is in README.md, The local Kafka broker.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from worker.errors import LocalBrokerError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy" / "local" / "kafka"
DEFAULT_HOME = REPO_ROOT / ".kafka"
READY_LINE = "Kafka Server started"
# kafka-run-class.sh's performance defaults, with a smaller starting heap for a 2-core CI box
JVM_FLAGS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise a one-line error when something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the JVM's server sockets do: connections in TIME_WAIT do not make a port "in use"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LocalBrokerError(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}): "
                "stop what holds it (make kafka-down) or choose another with KAFKA_PORT=..."
            ) from None


def check_java() -> str:
    """Return the java executable, or raise when Java 17+ is missing."""
    java = shutil.which("java")
    if java is None:
        raise LocalBrokerError(
            "java not found: Kafka 4 needs Java 17+ (apt-get install openjdk-17-jre-headless), "
            "or set KAFKA_BOOTSTRAP_SERVERS to use a broker of your own"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        raise LocalBrokerError(f"Kafka 4 needs Java 17+, found: {out.splitlines()[:1]}")
    return java


def fetch_jars(home: Path = DEFAULT_HOME) -> Path:
    """Resolve the broker's jars from Maven Central into `home/libs` once; return that folder."""
    pom = DEPLOY_DIR / "pom.xml"
    libs = home / "libs"
    stamp = home / "libs.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalBrokerError(
            "mvn not found: Maven 3.8+ resolves the Kafka jars (apt-get install maven), "
            "or set KAFKA_BOOTSTRAP_SERVERS to use a broker of your own"
        )
    shutil.rmtree(libs, ignore_errors=True)
    cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
    cmd += ["-DincludeScope=runtime", f"-DoutputDirectory={libs}"]
    if settings := os.environ.get("MAVEN_SETTINGS"):  # a mirror or proxy of the user's own
        cmd += ["-s", settings]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln]
        raise LocalBrokerError(
            "could not resolve the Kafka jars from Maven Central (is it reachable? a proxy in "
            f"~/.m2/settings.xml?): {lines[0] if lines else done.returncode}"
        )
    stamp.write_text(digest)
    return libs


def cluster_id() -> str:
    """Return a new cluster id in Kafka's own format (22 URL-safe chars, never a leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if "-" not in text:  # as Uuid.randomUuid(): argparse4j could read it as a flag
            return text


@dataclass(frozen=True, slots=True)
class BrokerLayout:
    """Where one broker keeps its files, and the two ports it listens on."""

    run_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def properties(self) -> Path:
        return self.run_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "kafka.out"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kafka.pid"


class LocalBroker:
    """One broker process: `start()` formats (first time only), launches and waits; `stop()`."""

    def __init__(self, layout: BrokerLayout, home: Path = DEFAULT_HOME) -> None:
        self.layout = layout
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    def _java_cmd(self, *args: str, heap: tuple[str, ...] = ("-Xmx256m",)) -> list[str]:
        log4j = f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}"
        classpath = str(fetch_jars(self.home) / "*")
        return [check_java(), *heap, log4j, "-cp", classpath, *args]

    def _write_properties(self) -> None:
        text = (DEPLOY_DIR / "server.properties.template").read_text()
        for name, value in {
            "PORT": str(self.layout.port),
            "CTRL_PORT": str(self.layout.controller_port),
            "DATA_DIR": str(self.layout.data_dir),
        }.items():
            text = text.replace("${" + name + "}", value)
        self.layout.properties.write_text(text)

    def _format(self) -> None:
        if (self.layout.data_dir / "meta.properties").exists():
            return  # formatted before: keep its data (a restart on the same dir)
        cmd = self._java_cmd("kafka.tools.StorageTool", "format", "--cluster-id", cluster_id())
        cmd += ["--config", str(self.layout.properties), "--standalone"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise LocalBrokerError(f"formatting KRaft storage failed: {done.stdout}{done.stderr}")

    def start(self, timeout_s: float = 90.0, cancelled: Callable[[], bool] = lambda: False) -> str:
        """Start the broker and return its bootstrap address once it serves metadata requests.

        `cancelled()` turning true while it starts (the demo's Ctrl-C) stops it and raises.
        """
        check_port_free(self.layout.port)
        check_port_free(self.layout.controller_port)
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format()
        cmd = self._java_cmd("kafka.Kafka", str(self.layout.properties), heap=JVM_FLAGS)
        with self.layout.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal goes to us; we stop it ourselves
                env={**os.environ, "LOG_DIR": str(self.layout.run_dir / "logs")},
            )
        self.layout.pid_file.write_text(str(self.process.pid))
        self._wait_ready(timeout_s, cancelled)
        return self.bootstrap

    def _wait_ready(self, timeout_s: float, cancelled: Callable[[], bool]) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        log_offset = self.layout.log_file.stat().st_size if self.layout.log_file.exists() else 0
        while time.monotonic() < deadline:
            if cancelled():
                self.stop()
                raise LocalBrokerError("the broker's start was cancelled; it is stopped")
            if self.process.poll() is not None:
                raise LocalBrokerError(
                    f"the broker exited with code {self.process.returncode}; "
                    f"last lines of {self.layout.log_file}:\n{self._log_tail()}"
                )
            if READY_LINE in self._log_since(log_offset) and self._serves_metadata():
                return
            time.sleep(0.2)  # polling a child process's log: nothing to wait on but time
        self.stop()
        raise LocalBrokerError(
            f"the broker did not become ready in {timeout_s:.0f} s; log:\n{self._log_tail()}"
        )

    def _log_since(self, offset: int) -> str:
        with self.layout.log_file.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _log_tail(self, lines: int = 20) -> str:
        text = self.layout.log_file.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _serves_metadata(self) -> bool:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            return len(admin.list_topics(timeout=5).brokers) >= 1
        except Exception:  # noqa: BLE001 - any client error here only means "not ready yet"
            return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker: SIGTERM (a controlled shutdown), then SIGKILL after `timeout_s`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.layout.pid_file.unlink(missing_ok=True)


def _layout_for_up(run_dir: Path, port: int) -> BrokerLayout:
    """Reuse the controller port a formatted data dir was made with: KRaft records its voter."""
    ports_file = run_dir / "controller.port"
    if ports_file.exists() and (run_dir / "data" / "meta.properties").exists():
        controller_port = int(ports_file.read_text())
    else:
        controller_port = free_port()
        run_dir.mkdir(parents=True, exist_ok=True)
        ports_file.write_text(str(controller_port))
    return BrokerLayout(run_dir=run_dir, port=port, controller_port=controller_port)


def _is_our_broker(pid: int, run_dir: Path) -> bool:
    """Tell whether `pid` is still the broker started for `run_dir` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "kafka.Kafka" in cmdline and str(run_dir) in cmdline


def _running_pid(run_dir: Path) -> int | None:
    """Return the pid of the broker `up` started in `run_dir`, if it still runs."""
    pid_file = run_dir / "kafka.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    return pid if _is_our_broker(pid, run_dir) else None


def stop_by_pid_file(run_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop the broker `up` started in `run_dir`; return False when none was running."""
    pid = _running_pid(run_dir)
    (run_dir / "kafka.pid").unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_broker(pid, run_dir):
        time.sleep(0.2)  # not our child (started by an earlier `up`): poll /proc until it is gone
    if _is_our_broker(pid, run_dir):
        os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m worker.kafka.localbroker fetch|up|down`: the Makefile's kafka-* targets."""
    parser = argparse.ArgumentParser(prog="python -m worker.kafka.localbroker")
    parser.add_argument("command", choices=["fetch", "up", "down"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")))
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_HOME / "run")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            libs = fetch_jars()
            size_mb = sum(p.stat().st_size for p in libs.glob("*.jar")) / 1e6
            print(f"Kafka jars in {libs} ({size_mb:.0f} MB)")
        elif args.command == "up":
            running = _running_pid(args.run_dir)
            if running is not None:
                print(f"a local broker is already running (pid {running}); make kafka-down first")
                return 0
            started = time.monotonic()
            broker = LocalBroker(_layout_for_up(args.run_dir, args.port))
            bootstrap = broker.start()
            print(f"Kafka ready in {time.monotonic() - started:.1f} s at {bootstrap}")
            print(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}  (log: {broker.layout.log_file})")
        elif not stop_by_pid_file(args.run_dir):
            print("no local broker was running")
        else:
            print("local broker stopped")
    except LocalBrokerError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
