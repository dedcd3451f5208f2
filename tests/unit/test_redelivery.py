"""The repair of partitions whose fetched records never reached the stream."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from intervaltree import IntervalTree  # type: ignore[import-untyped]

from streams.redelivery import (
    AckHoleRepair,
    HandledOffsets,
    Hole,
    find_holes,
    install_ack_tidy,
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


async def test_repair_seeks_after_grace_period() -> None:
    consumer = FakeConsumer()
    repaired: list[Hole] = []
    repair = AckHoleRepair(
        lambda: consumer,
        topics=["assertions"],
        handled=HandledOffsets(),
        on_repair=repaired.append,
        grace_seconds=5.0,
    )
    assert await repair.check(now=100.0) == []
    assert await repair.check(now=103.0) == []
    assert await repair.check(now=105.0) == [Hole(A0, 10, 13)]
    assert consumer.seeks == [(A0, 10)]
    assert repaired == [Hole(A0, 10, 13)]


async def test_repair_skips_filled_hole() -> None:
    consumer = FakeConsumer()
    repair = AckHoleRepair(
        lambda: consumer, topics=["assertions"], handled=HandledOffsets(), grace_seconds=5.0
    )
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
    repair = AckHoleRepair(
        lambda: consumer, topics=["assertions"], handled=HandledOffsets(), grace_seconds=5.0
    )
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
