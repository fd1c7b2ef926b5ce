"""Profile state as bytes for the compacted changelog topic, and back. Pure.

Short field names keep a million-profile changelog small; unknown fields are ignored so an
older worker can read a newer snapshot. Audience ids are stored, never list ids.
"""

from __future__ import annotations

from typing import Any

import msgspec

from worker.core.ids import AudienceId, LeadId
from worker.core.profile import ProfileState


class _Snapshot(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    t: int  # ts_ms
    o: int  # input offset of the event that made this state
    e: str | None = None  # email (the match key; the changelog is internal, like the input)
    c: str | None = None  # ecid
    a: dict[str, Any] = {}  # only the attributes rules and mapping read
    n: dict[str, str] = {}  # consent
    u: dict[str, bool] = {}  # upload-origin memberships
    d: list[str] = []  # desired audiences
    k: list[str] = []  # audiences Marketo acknowledged
    lead: int | None = None
    x: bool = False  # deleted marker


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Snapshot)


def encode(state: ProfileState) -> bytes:
    """Serialize a profile's state for the changelog."""
    return _encoder.encode(
        _Snapshot(
            t=state.ts_ms,
            o=state.offset,
            e=state.email,
            c=state.ecid,
            a=state.attributes,
            n=state.consent,
            u=state.uploaded,
            d=sorted(state.desired),
            k=sorted(state.acked),
            lead=state.lead_id,
            x=state.deleted,
        )
    )


def decode(data: bytes) -> ProfileState:
    """Read a changelog value back; raises msgspec.DecodeError on a corrupt record."""
    snap = _decoder.decode(data)
    return ProfileState(
        ts_ms=snap.t,
        offset=snap.o,
        email=snap.e,
        ecid=snap.c,
        attributes=snap.a,
        consent=snap.n,
        uploaded=snap.u,
        desired=frozenset(AudienceId(a) for a in snap.d),
        acked=frozenset(AudienceId(a) for a in snap.k),
        lead_id=None if snap.lead is None else LeadId(snap.lead),
        deleted=snap.x,
    )
