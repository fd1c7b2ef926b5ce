"""How long the worker waits for Kafka to acknowledge the records it produced. Pure: a constant.

Offsets are committed, and a partition's clean handover written or withdrawn, only once every
record produced before is acknowledged; the commit and the restore give up (DeliveryFailed)
rather than wait longer.
"""

from __future__ import annotations

from typing import Final

FLUSH_TIMEOUT_S: Final = 30.0
