"""What a partition read back from the changelog needs besides keeping its states. Pure.

Most states are kept as they were read, still encoded. Decoded are only those that need more:
every one when the rules may have changed (no clean-handover marker with these rules'
fingerprint: a crash, or other rules), else the ones with a membership Marketo has not
acknowledged (told from the encoded head), which are sent again. An activation
(worker.core.activation: other audience definitions than the partition's record) decodes every
one too, and brings its memberships to the configured audiences. With
`marketo.delete_persons`, so are deleted ones whose Marketo person is still to be deleted: the
replayed delete event is stale against such a state, so only the restore can queue it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from worker.core.activation import Activation
from worker.core.ids import ProfileId
from worker.core.membership import Audiences
from worker.core.profile import ProfileState
from worker.core.snapshot import Image, StateCodec


@dataclass(slots=True)
class Restored:
    """A partition read back, and the states among it that need more than keeping."""

    image: Image  # corrupt records removed
    changed: dict[ProfileId, ProfileState] = field(default_factory=dict)  # evaluated afresh
    pending: dict[ProfileId, ProfileState] = field(default_factory=dict)  # to send again
    erasing: dict[ProfileId, ProfileState] = field(default_factory=dict)  # persons to delete
    corrupt: int = 0


def triage(
    image: Image,
    codec: StateCodec,
    audiences: Audiences,
    *,
    delete_persons: bool = False,
    activation: Activation | None = None,
) -> Restored:
    """Sort a partition's states: evaluated afresh to another membership, unacknowledged,
    and (with `delete_persons`) deleted with their Marketo person still to delete. With an
    `activation`, each state is brought to the configured audiences first."""
    evaluate = image.marker != audiences.fingerprint
    decode_all = evaluate or activation is not None
    restored = Restored(image)
    corrupt: list[bytes] = []
    for key, data in image.states.items():
        try:
            if (
                not decode_all
                and not codec.unacknowledged(data)
                and not (delete_persons and codec.may_be_erasing(data))
            ):
                continue
            state = codec.decode(data)
            profile = ProfileId(key.decode())
        except (msgspec.DecodeError, UnicodeDecodeError):
            corrupt.append(key)
            continue
        changed = activation is not None and activation.apply(state)
        if evaluate:
            desired = audiences.desired(state)
            changed = changed or desired != state.desired
            state.desired = desired
        if changed:
            restored.changed[profile] = state
        if state.desired != state.acked:
            restored.pending[profile] = state
        if delete_persons and state.erasing and state.lead_id is not None:
            restored.erasing[profile] = state
    for key in corrupt:
        del image.states[key]
    restored.corrupt = len(corrupt)
    return restored
