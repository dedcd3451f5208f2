"""Fetch again the records faust fetched but never handed to the stream.

faust commits a partition only up to its first offset that the stream has not
acknowledged. faust-streaming 0.15.3 can lose fetched records on their way to the
stream when a worker takes partitions over: it resumes fetching before it seeks to the
committed offsets, and clears the stream's buffer when it resumes the flow. Records
that sat in the buffer are dropped, while faust's read position has already passed
them, so they are never fetched again. The partition goes on being processed above
the hole, and its committed offset never moves again.

:class:`AckHoleRepair` looks at faust's acknowledgement bookkeeping every few seconds.
A partition whose lowest acknowledged offset stays more than one past its committed
offset has a hole that no record in flight will fill. The repair seeks that partition
back to its committed offset, so the dropped records are fetched and handled. Records
above the hole come again too: the gate skips the ones this process has already
handled (:class:`HandledOffsets`), so no output is written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mode import Service

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
# Seeks that must leave a hole unchanged before a commit may pass it.
SEEKS_BEFORE_PASSING = 3
# A hole must stay unchanged this long before the partition is fetched again.
HOLE_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Hole:
    """Offsets ``first`` to ``last`` of a partition were never acknowledged."""

    tp: Any
    first: int
    last: int


def head_hole(tp: Any, committed: int | None, acked: Iterable[int], gap: Any) -> Hole | None:
    """Return the offsets between the committed offset and the lowest ack, if any.

    ``committed`` is the next offset to read, or None before the group's first commit,
    when the partition starts at offset 0. ``gap`` is faust's interval tree of offsets
    without a record (transaction markers), which faust counts as acknowledged.
    """
    start = committed if committed is not None else 0
    # Acks below the committed offset are stale copies that the next commit drops.
    offsets = [offset for offset in acked if offset >= start]
    if not offsets:
        return None
    lowest = min(offsets)
    if lowest == start:
        return None
    if gap is not None and gap.overlaps(start, lowest):
        return None
    return Hole(tp, start, lowest - 1)


def find_holes(
    committed: Mapping[Any, int | None],
    acked: Mapping[Any, Iterable[int]],
    gaps: Mapping[Any, Any],
    partitions: Collection[Any],
) -> list[Hole]:
    """Return the partitions whose acknowledgements start above the committed offset.

    ``committed`` maps each partition to the next offset to read, and ``acked`` to the
    acknowledged offsets not yet committed. ``gaps`` contains faust's interval trees of
    offsets without a record.
    """
    holes = (head_hole(tp, committed.get(tp), acked.get(tp, ()), gaps.get(tp)) for tp in partitions)
    return [hole for hole in holes if hole is not None]


class HandledOffsets:
    """Offsets this process handled and faust has not committed yet, per partition.

    A record fetched again after a repair seek is skipped when its offset is here,
    because the first handling already routed it. Offsets below the committed offset
    are pruned.
    """

    def __init__(self) -> None:
        self._offsets: dict[Any, set[int]] = {}

    def __contains__(self, item: tuple[Any, int]) -> bool:
        tp, offset = item
        return offset in self._offsets.get(tp, ())

    def add(self, tp: Any, offset: int) -> None:
        """Record that handling ``offset`` finished, its outputs sent."""
        self._offsets.setdefault(tp, set()).add(offset)

    def prune(self, committed: Mapping[Any, int | None]) -> None:
        for tp, seen in list(self._offsets.items()):
            start = committed.get(tp)
            if start is None:
                continue
            self._offsets[tp] = {offset for offset in seen if offset >= start}

    def forget(self, tps: Iterable[Any]) -> None:
        """Drop ``tps``, which this process lost in a rebalance."""
        for tp in tps:
            self._offsets.pop(tp, None)

    def keep_only(self, tps: Collection[Any]) -> None:
        """Drop the partitions this process no longer owns."""
        for tp in [tp for tp in self._offsets if tp not in tps]:
            del self._offsets[tp]

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._offsets.values())


def tidy_acks(acked: list[int], index: set[int], committed: int | None) -> bool:
    """Drop duplicate and already committed offsets from faust's list of acks.

    faust finds the offset to commit from the first run of consecutive numbers in the
    sorted list. After a takeover the list can hold an offset twice (the record was
    fetched before and after faust's seek), which splits that run after one offset,
    so each commit moves the partition by one record. Returns True if it changed.
    """
    clean = sorted({offset for offset in acked if committed is None or offset >= committed})
    if clean == acked:
        return False
    acked[:] = clean
    index.clear()
    index.update(clean)
    return True


def install_ack_tidy(consumer: Any, may_pass: Callable[[Hole], bool] = lambda hole: False) -> None:
    """Make ``consumer`` tidy a partition's acks each time it computes a commit offset.

    faust itself commits past a single missing offset at the head of the acks, since a
    transaction marker takes an offset without a record. A record dropped on a takeover
    looks the same, so no commit passes a hole unless ``may_pass`` allows it.
    """
    if getattr(consumer, "_stemedb_ack_tidy", False):
        return
    compute = consumer._new_offset

    def new_offset(tp: Any) -> int | None:
        acked = consumer._acked.get(tp)
        if acked:
            committed = consumer._committed_offset.get(tp)
            tidy_acks(acked, consumer._acked_index[tp], committed)
            hole = head_hole(tp, committed, acked, consumer._gap.get(tp))
            if hole is not None and not may_pass(hole):
                return None
        result: int | None = compute(tp)
        return result

    consumer._new_offset = new_offset
    consumer._stemedb_ack_tidy = True


class AckHoleRepair(Service):
    """Service that seeks a partition back to its committed offset when its acks stall."""

    def __init__(
        self,
        consumer: Callable[[], Any],
        topics: Collection[str],
        handled: HandledOffsets,
        on_repair: Callable[[Hole], None] = lambda hole: None,
        *,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = HOLE_GRACE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._consumer = consumer
        self.topics = frozenset(topics)
        self.handled = handled
        self.on_repair = on_repair
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        # Hole -> monotonic time it was first seen unchanged.
        self._pending: dict[Hole, float] = {}
        # Seeks made per hole, and holes that held no record after all of them.
        self._seeks: dict[Hole, int] = {}
        self._passable: set[Hole] = set()

    def may_pass(self, hole: Hole) -> bool:
        """Return whether a commit may pass ``hole``: fetching it again found no record.

        faust decides this only for a single missing offset. It never commits past a hole
        of two or more, so those stay until a seek fills them or the stall check fires.
        """
        return hole in self._passable

    @Service.task
    async def _poll_forever(self) -> None:
        while not self.should_stop:
            await self.sleep(self.poll_seconds)
            try:
                await self.check(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("checking for unacknowledged offsets failed")

    async def check(self, now: float) -> list[Hole]:
        """Seek every partition whose hole has lasted the grace period, and return them."""
        consumer = self._consumer()
        assigned = {tp for tp in consumer.assignment() if tp.topic in self.topics}
        committed = dict(consumer._committed_offset)
        self.handled.keep_only(assigned)
        self.handled.prune(committed)
        holes = find_holes(committed, consumer._acked, consumer._gap, assigned)
        self._pending = {hole: self._pending.get(hole, now) for hole in holes}
        repaired: list[Hole] = []
        for hole, since in list(self._pending.items()):
            if now - since < self.grace_seconds:
                continue
            if self._seeks.get(hole, 0) >= SEEKS_BEFORE_PASSING:
                # Fetched again several times and still missing: these offsets hold no
                # record, as with a transaction marker. One seek is not enough, because
                # the fetch that faust was still handing over can drop the records again.
                logger.info(
                    "%s[%d]: offsets %d-%d hold no record, committing past them",
                    hole.tp.topic,
                    hole.tp.partition,
                    hole.first,
                    hole.last,
                )
                self._passable.add(hole)
                del self._pending[hole]
                continue
            logger.warning(
                "%s[%d]: offsets %d-%d were fetched but never reached the stream, "
                "fetching again from offset %d",
                hole.tp.topic,
                hole.tp.partition,
                hole.first,
                hole.last,
                hole.first,
            )
            await consumer.seek(hole.tp, hole.first)
            self._seeks[hole] = self._seeks.get(hole, 0) + 1
            self.on_repair(hole)
            del self._pending[hole]
            repaired.append(hole)
        return repaired
