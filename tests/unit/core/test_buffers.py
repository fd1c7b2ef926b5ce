"""Coalescing buffers: last write wins per key, and a key is never in two calls at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.buffers import CoalescingBuffer, Lane, Taken
from worker.core.ledger import Hold


def hold(offset: int) -> Hold:
    return Hold(0, offset, 1)


def test_a_newer_value_replaces_the_pending_one_and_frees_its_hold() -> None:
    """Last write wins; the replaced entry's hold is returned for release."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    assert buffer.put("p1", True, hold(1), now=0.0) is None
    assert buffer.put("p1", False, hold(2), now=1.0) == hold(1)
    assert buffer.pending("p1") is False
    assert len(buffer) == 1


def test_a_replaced_entry_keeps_its_age() -> None:
    """Linger counts from the first buffering, so a busy key cannot delay its flush forever."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=5.0)
    buffer.put("p1", False, hold(2), now=9.0)
    assert buffer.oldest_since() == 5.0


def test_take_moves_oldest_first_up_to_the_limit() -> None:
    """A call takes the oldest entries first and no more than asked."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    for i in range(5):
        buffer.put(f"p{i}", True, hold(i), now=float(i))
    taken = buffer.take(3)
    assert [t.key for t in taken] == ["p0", "p1", "p2"]
    assert len(buffer) == 2


def test_a_key_in_flight_is_not_taken_again() -> None:
    """A newer value for a key whose call is in flight waits for that call to finish."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=0.0)
    taken = buffer.take(10)
    buffer.put("p1", False, hold(2), now=1.0)
    assert buffer.take(10) == []
    buffer.finish(taken)
    assert [t.key for t in buffer.take(10)] == ["p1"]


def test_give_back_keeps_a_newer_value_and_returns_the_old_hold() -> None:
    """A failed call's entry is retried unless a newer value arrived meanwhile."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=0.0)
    buffer.put("p2", True, hold(2), now=0.0)
    taken = buffer.take(10)
    buffer.put("p1", False, hold(3), now=1.0)
    superseded = buffer.give_back(taken)
    assert superseded == [hold(1)]
    assert buffer.pending("p1") is False
    assert buffer.pending("p2") is True


def test_cancel_removes_the_entry_and_returns_its_hold() -> None:
    """Cancelling drops the pending entry so no call is made for it."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=0.0)
    assert buffer.cancel("p1") == hold(1)
    assert len(buffer) == 0
    assert buffer.take(10) == []


def test_give_back_drops_the_entries_no_longer_to_keep() -> None:
    """Entries of a revoked partition are not retried; their holds are returned."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=0.0)
    buffer.put("p2", True, Hold(1, 2, 1), now=0.0)
    released = buffer.give_back(
        buffer.take(10), keep=lambda e: e.hold is None or e.hold.partition == 0
    )
    assert released == [Hold(1, 2, 1)]
    assert (buffer.pending("p1"), buffer.pending("p2")) == (True, None)


def test_drop_forgets_a_matching_call_in_flight() -> None:
    """A revoked partition's call in flight no longer counts: a new value can be sent."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p1", True, hold(1), now=0.0)
    old = buffer.take(10)
    buffer.drop(lambda _entry: True)
    assert buffer.in_flight("p1") is None
    buffer.put("p1", False, hold(2), now=1.0)
    new = buffer.take(10)
    buffer.finish(old)  # the old call ends: the new one is still in flight
    assert ([t.key for t in new], buffer.in_flight("p1")) == (["p1"], False)


def holds(buffer: CoalescingBuffer[str, bool], key: str) -> bool:
    return buffer.pending(key) is not None or buffer.in_flight(key) is not None


OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "cancel", "take", "finish", "give_back", "drop"]),
        st.integers(0, 1),  # which buffer
        st.sampled_from(["p1", "p2", "p3"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_shared_presence_names_the_buffers_holding_each_key(
    ops: list[tuple[str, int, str]],
) -> None:
    """Whatever the operations, the shared presence of a key names the buffers where it is
    pending or in flight (the outbox reads it in one lookup)."""
    presence: dict[str, set[str]] = {}
    buffers: list[CoalescingBuffer[str, bool]] = [
        CoalescingBuffer(presence, name) for name in ("b0", "b1")
    ]
    calls: list[list[list[Taken[str, bool]]]] = [[], []]
    for op, index, key in ops:
        buffer = buffers[index]
        if op == "put":
            buffer.put(key, True, hold(ord(key[-1])), now=0.0)  # p2 even: kept on give_back
        elif op == "cancel":
            buffer.cancel(key)
        elif op == "take":
            calls[index].append(buffer.take(2))
        elif op in ("finish", "give_back") and calls[index]:
            taken = calls[index].pop(0)
            if op == "finish":
                buffer.finish(taken)
            else:
                buffer.give_back(
                    taken, keep=lambda e: e.hold is None or (e.hold.offset or 0) % 2 == 0
                )
        elif op == "drop":
            buffer.drop(lambda entry: entry.value)
    names = {"b0": buffers[0], "b1": buffers[1]}
    held = {k: {n for n, b in names.items() if holds(b, k)} for k in ("p1", "p2", "p3")}
    expected = {k: where for k, where in held.items() if where}
    assert presence == expected


def test_stream_entries_are_taken_before_older_backlog_ones() -> None:
    """A streamed change goes in the next call ahead of a backlog queued before it."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    for i in range(3):
        buffer.put(f"old{i}", True, None, now=0.0, lane=Lane.BACKLOG)
    buffer.put("new", True, hold(9), now=5.0)
    assert [t.key for t in buffer.take(2)] == ["new", "old0"]


def test_a_backlog_key_the_stream_changes_moves_to_the_stream_lane() -> None:
    """A backlog entry updated by the stream waits as the stream's, aged from that change."""
    buffer: CoalescingBuffer[str, bool] = CoalescingBuffer()
    buffer.put("p", True, None, now=0.0, lane=Lane.BACKLOG)
    buffer.put("p", False, hold(3), now=4.0)
    assert (buffer.waiting(Lane.STREAM), buffer.waiting(Lane.BACKLOG)) == (1, 0)
    assert buffer.oldest_since(Lane.STREAM) == 4.0


def test_a_stream_entry_stays_in_the_stream_lane_when_the_backlog_updates_it() -> None:
    """A backlog put on a key the stream waits for keeps it in the stream's lane."""
    buffer: CoalescingBuffer[str, frozenset[str]] = CoalescingBuffer()
    buffer.put("ann@x.io", frozenset({"p1"}), None, now=1.0)
    buffer.put("ann@x.io", frozenset({"p1", "p2"}), None, now=2.0, lane=Lane.BACKLOG)
    assert buffer.waiting(Lane.STREAM) == 1
    assert buffer.oldest_since() == 1.0
