"""What `run` does against Marketo before it consumes: the day's usage (which also proves the
credentials), the mapped fields checked against Marketo's describe, each audience's list found or
created."""

from __future__ import annotations

from worker.core.fields import Converter
from worker.core.ids import AudienceId, ListId
from worker.errors import ConfigError, RequestRejected
from worker.marketo.client import MarketoClient
from worker.quota_watch import QuotaWatch
from worker.settings import Settings
from worker.startup.checks import startup_checks
from worker.startup.progress import StartUp
from worker.startup.provisioning import resolve_lists


async def prepare(
    settings: Settings, client: MarketoClient, watch: QuotaWatch, progress: StartUp
) -> tuple[Converter, dict[AudienceId, ListId]]:
    """Start-up against Marketo: the day's usage (the whole instance's, other API users' calls
    shrinking this worker's share), the mapped fields, each audience's list."""
    progress.enter("usage check")
    try:
        await watch.read()  # also proves the credentials
    except RequestRejected as exc:
        # bad credentials (401) or base_url (3xx/4xx): a configuration error, not a crash
        raise ConfigError(f"marketo: {exc}: check base_url and MARKETO_CLIENT_*") from None
    progress.enter("field checks")
    converter = await startup_checks(settings, client)
    list_ids = await resolve_lists(
        client, settings.audiences, settings.marketo.list_folder, on_step=progress.enter
    )
    return converter, list_ids
