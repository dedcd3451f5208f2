"""The repair of partitions whose fetched records never reached the stream."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from intervaltree import IntervalTree  # type: ignore[import-untyped]

from streams.redelivery import (
    AckHoleRepair,
    CommitBarrier,
    DroppedOffsets,
    HandledOffsets,
    Hole,
    ReadPositions,
    find_holes,
    install_ack_tidy,
    install_redelivery,
    note_cleared_records,
    tidy_acks,
)


class TP(tuple[str, int]):
    @property
    def topic(self) -> str:
        return self[0]

    @property
    def partition(self) -> int:
        return self[1]


A0 = TP(("assertions", 0))
A1 = TP(("assertions", 1))
OTHER = TP(("agents-changelog", 0))


def test_find_holes_acks_from_committed() -> None:
    assert find_holes({A0: 10}, {A0: [10, 11, 12]}, {}, [A0]) == []


def test_find_holes_one_missing_offset() -> None:
    # faust would commit past it, but a record dropped on a takeover looks the same.
    assert find_holes({A0: 10}, {A0: [11, 12]}, {}, [A0]) == [Hole(A0, 10, 10)]


def test_find_holes_several_missing_offsets() -> None:
    holes = find_holes({A0: 10, A1: 5}, {A0: [13, 14], A1: [5]}, {}, [A0, A1])
    assert holes == [Hole(A0, 10, 12)]


def test_find_holes_transaction_marker_gap() -> None:
    gaps = {A0: IntervalTree.from_tuples([(10, 13)])}
    assert find_holes({A0: 10}, {A0: [13, 14]}, gaps, [A0]) == []


def test_find_holes_nothing_committed_or_acked() -> None:
    # Before the group's first commit a partition starts at offset 0.
    assert find_holes({A0: None}, {A0: [13]}, {}, [A0]) == [Hole(A0, 0, 12)]
    assert find_holes({A0: None}, {A0: [0, 1]}, {}, [A0]) == []
    assert find_holes({A0: 10}, {A0: []}, {}, [A0]) == []


def test_tidy_acks_duplicates_and_committed() -> None:
    acked = [9, 10, 11, 11, 12, 12]
    index = {9, 10, 11, 12, 40}
    assert tidy_acks(acked, index, committed=10)
    assert acked == [10, 11, 12]
    assert index == {10, 11, 12}


def test_tidy_acks_clean_list() -> None:
    acked = [10, 11]
    assert not tidy_acks(acked, {10, 11}, committed=10)


def test_handled_offsets_add_and_prune() -> None:
    handled = HandledOffsets()
    assert (A0, 5) not in handled
    handled.add(A0, 5)
    assert (A0, 5) in handled
    handled.prune({A0: 6})
    assert len(handled) == 0
    handled.add(A0, 5)
    handled.keep_only({A1})
    assert len(handled) == 0


class FakeConsumer:
    def __init__(self) -> None:
        self._committed_offset: dict[Any, int | None] = {A0: 10, A1: 20, OTHER: 3}
        self._acked: dict[Any, list[int]] = defaultdict(list, {A0: [14, 15], A1: [20]})
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._gap: dict[Any, Any] = {}
        self.seeks: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return {A0, A1, OTHER}

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    def _new_offset(self, tp: Any) -> int | None:
        acked = self._acked[tp]
        return acked[-1] + 1 if acked else None


def repair_of(consumer: Any, **options: Any) -> AckHoleRepair:
    """Return a repair of ``consumer``'s ``assertions`` partitions, 5 s grace by default."""
    options.setdefault("grace_seconds", 5.0)
    return AckHoleRepair(
        lambda: consumer, topics=["assertions"], handled=HandledOffsets(), **options
    )


async def test_repair_seeks_after_grace_period() -> None:
    consumer = FakeConsumer()
    seeks: list[tuple[Any, int]] = []
    repair = AckHoleRepair(
        lambda: consumer,
        topics=["assertions"],
        handled=HandledOffsets(),
        on_seek=lambda tp, offset: seeks.append((tp, offset)),
        grace_seconds=5.0,
    )
    assert await repair.check(now=100.0) == []
    assert await repair.check(now=103.0) == []
    assert await repair.check(now=105.0) == [Hole(A0, 10, 13)]
    assert consumer.seeks == [(A0, 10)]
    assert seeks == [(A0, 10)]


async def test_repair_skips_filled_hole() -> None:
    consumer = FakeConsumer()
    repair = repair_of(consumer)
    await repair.check(now=100.0)
    consumer._acked[A0] = [10, 11, 14, 15]
    assert await repair.check(now=106.0) == []
    assert consumer.seeks == []


def test_install_ack_tidy_before_commit() -> None:
    consumer = FakeConsumer()
    consumer._acked[A1] = [19, 20, 20, 21]
    install_ack_tidy(consumer)
    install_ack_tidy(consumer)
    assert consumer._new_offset(A1) == 22
    assert consumer._acked[A1] == [20, 21]


async def test_repair_passes_hole_without_records() -> None:
    consumer = FakeConsumer()
    repair = repair_of(consumer)
    hole = Hole(A0, 10, 13)
    await repair.check(now=100.0)
    assert await repair.check(now=105.0) == [hole]
    assert not repair.may_pass(hole)

    for start in (106.0, 112.0):
        await repair.check(now=start)
        assert await repair.check(now=start + 5.0) == [hole]
        assert not repair.may_pass(hole)

    await repair.check(now=118.0)
    assert await repair.check(now=123.0) == []
    assert repair.may_pass(hole)
    assert consumer.seeks == [(A0, 10)] * 3


def test_install_ack_tidy_blocks_commit_over_hole() -> None:
    consumer = FakeConsumer()
    allowed: set[Hole] = set()
    install_ack_tidy(consumer, allowed.__contains__)
    consumer._acked[A0] = [11, 12]

    assert consumer._new_offset(A0) is None
    allowed.add(Hole(A0, 10, 10))
    assert consumer._new_offset(A0) == 13


def test_read_positions_never_drop_a_record() -> None:
    consumer = FakeConsumer()
    consumer._read_offset = defaultdict(lambda: None, {A0: 40})
    install_redelivery(consumer)
    install_redelivery(consumer)
    positions = consumer._read_offset

    assert isinstance(positions, ReadPositions)
    positions[A1] = 7
    # faust drops a fetched record below the position it looks up here.
    assert positions[A0] is None
    assert positions[A1] is None
    assert dict(positions) == {A0: 40, A1: 7}


class FakeQueue:
    def __init__(self, items: list[Any]) -> None:
        self._queue = list(items)


class FakeFlowControl:
    def __init__(self, *queues: FakeQueue) -> None:
        self._queues = set(queues)

    def clear(self) -> None:
        for queue in self._queues:
            queue._queue.clear()


def buffered(tp: Any, offset: int) -> Any:
    class Event:
        message = SimpleNamespace(tp=tp, offset=offset)

    return Event()


def test_cleared_records_are_noted() -> None:
    queue = FakeQueue([buffered(A0, 12), buffered(A0, 11), buffered(OTHER, 2), buffered(A1, 30)])
    flow_control = FakeFlowControl(queue)
    dropped = DroppedOffsets()
    note_cleared_records(flow_control, ["assertions"], dropped)
    note_cleared_records(flow_control, ["assertions"], dropped)

    flow_control.clear()

    assert queue._queue == []
    assert dropped.take() == {A0: 11, A1: 30}
    assert len(dropped) == 0

    dropped.note(A0, 5)
    dropped.note(A1, 6)
    dropped.forget([A0])
    assert dropped.take() == {A1: 6}


async def test_repair_fetches_dropped_records_again() -> None:
    consumer = FakeConsumer()
    dropped = DroppedOffsets()
    repair = repair_of(consumer, dropped=dropped)
    dropped.note(A1, 25)
    # Offset 4 is below the committed offset, so it was handled since the clear.
    dropped.note(A0, 4)

    await repair.check(now=100.0)

    assert consumer.seeks == [(A1, 25)]


class FakeBrokerConsumer:
    """The consumer inside faust's consumer thread, which returns committed offsets."""

    def __init__(self, committed: dict[Any, int | None]) -> None:
        self.offsets = committed

    async def committed(self, tp: Any) -> int | None:
        return self.offsets.get(tp)


class FakeThread:
    def __init__(self, committed: dict[Any, int | None]) -> None:
        self.consumer = FakeBrokerConsumer(committed)

    def _ensure_consumer(self) -> FakeBrokerConsumer:
        return self.consumer

    async def call_thread(self, method: Any, *args: Any) -> Any:
        return await method(*args)


async def test_repair_reads_unknown_committed_offsets() -> None:
    consumer = FakeConsumer()
    consumer._committed_offset[A0] = None
    consumer._thread = FakeThread({A0: 14})  # type: ignore[attr-defined]
    repair = repair_of(consumer, grace_seconds=0.0)

    # Without the broker's committed offset, acks from 14 look like a hole from 0.
    assert await repair.check(now=100.0) == []
    assert consumer._committed_offset[A0] == 14


async def test_repair_waits_for_commit_in_flight() -> None:
    consumer = FakeConsumer()
    repair = repair_of(consumer)
    # faust took acks 10-13 for a commit that has not ended yet.
    repair.committing[A0] = (14, 99.0)
    consumer._acked[A0] = [14, 15]

    await repair.check(now=100.0)
    assert await repair.check(now=110.0) == []
    assert consumer.seeks == []


async def test_repair_gives_up_on_stuck_commit() -> None:
    consumer = FakeConsumer()
    repair = repair_of(consumer)
    repair.committing[A0] = (14, 0.0)
    consumer._acked[A0] = [14, 15]

    await repair.check(now=100.0)
    assert await repair.check(now=105.0) == [Hole(A0, 10, 13)]
    assert repair.committing == {}


def test_install_ack_tidy_notes_commits_in_flight() -> None:
    consumer = FakeConsumer()
    committing: dict[Any, tuple[int, float]] = {}
    install_ack_tidy(consumer, committing=committing)

    assert consumer._new_offset(A1) == 21
    assert committing[A1][0] == 21


class CommittingConsumer:
    def __init__(self, in_transaction: bool) -> None:
        self.in_transaction = in_transaction
        self.events: list[str] = []
        buffer = SimpleNamespace(flush=self._flush)
        self.app = SimpleNamespace(producer=SimpleNamespace(buffer=buffer))

    async def _flush(self) -> None:
        self.events.append("flush")

    async def _commit_tps(self, tps: Any, start_new_transaction: bool = True) -> bool:
        self.events.append("commit")
        return True


async def test_commit_waits_for_record_in_flight() -> None:
    consumer = CommittingConsumer(in_transaction=False)
    barrier = CommitBarrier()
    barrier.install(consumer)
    barrier.install(consumer)

    await barrier.enter()
    commit = asyncio.create_task(consumer._commit_tps([A0]))
    await asyncio.sleep(0)
    assert consumer.events == []

    barrier.leave()
    assert await commit is True
    assert consumer.events == ["commit"]


async def test_gate_waits_while_commit_runs() -> None:
    consumer = CommittingConsumer(in_transaction=True)
    barrier = CommitBarrier()
    release = asyncio.Event()
    commit_tps = consumer._commit_tps

    async def slow_commit(tps: Any, start_new_transaction: bool = True) -> bool:
        await release.wait()
        return await commit_tps(tps)

    consumer._commit_tps = slow_commit  # type: ignore[method-assign]
    barrier.install(consumer)
    commit = asyncio.create_task(consumer._commit_tps([A0]))
    await asyncio.sleep(0)
    entered = asyncio.create_task(barrier.enter())
    await asyncio.sleep(0)
    assert not entered.done()

    release.set()
    await commit
    await entered
    # Under exactly-once the send buffer, with table changelog writes, is flushed first.
    assert consumer.events == ["flush", "commit"]
