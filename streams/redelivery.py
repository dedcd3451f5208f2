"""Fetch again the records faust fetched but never handed to the stream.

faust commits a partition only up to its first offset that the stream has not
acknowledged. faust-streaming 0.15.3 loses fetched records on their way to the stream
in three ways, all around rebalances and recovery:

- it clears the stream's buffer when it resumes the flow, after it has already sought
  to the committed offsets and fetched records again;
- it drops a fetched record whose offset is below its read position for the partition,
  and a batch fetched before a seek can move that position past the records the seek
  fetches again;
- it stops handing over a fetched batch when the flow stops or the group changes.

The records are gone from the stream while the consumer's position has passed them, so
they are never fetched again. The partition goes on being processed above the hole, and
its committed offset never moves again.

:func:`install_redelivery` turns off faust's read-position check, so every record a
seek fetches again reaches the stream, and notes the lowest offset of every partition
whose records a buffer clear dropped. :class:`AckHoleRepair` seeks those partitions
back to that offset. As a backstop, it also seeks back any partition whose lowest
acknowledged offset stays above its committed offset. Records that come twice are
skipped by the gate when this process already handled them (:class:`HandledOffsets`).
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
# A commit in flight for longer than this counts as failed, and its offset is ignored.
COMMIT_WAIT_SECONDS = 10.0


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


class ReadPositions(dict[Any, Any]):
    """faust's read position per partition, with its drop check turned off.

    faust drops a fetched record whose offset is below the read position, a guard
    against records fetched twice. After a seek, a batch fetched before it can still
    move the position past the offsets the seek fetches again, and those are then
    dropped for good. Here a lookup always returns "no position", so every fetched
    record reaches the stream. The gate skips a record that comes twice. faust
    still writes positions, and its gap bookkeeping, which needs a position, is off.
    """

    def __getitem__(self, tp: Any) -> None:
        return None


class DroppedOffsets:
    """Lowest offset per partition of the records that a buffer clear dropped."""

    def __init__(self) -> None:
        self._lowest: dict[Any, int] = {}

    def note(self, tp: Any, offset: int) -> None:
        lowest = self._lowest.get(tp)
        if lowest is None or offset < lowest:
            self._lowest[tp] = offset

    def forget(self, tps: Iterable[Any]) -> None:
        """Drop ``tps``, revoked: their next owner seeks to the committed offset."""
        for tp in tps:
            self._lowest.pop(tp, None)

    def take(self) -> dict[Any, int]:
        """Return the noted offsets and forget them."""
        lowest, self._lowest = self._lowest, {}
        return lowest

    def __len__(self) -> int:
        return len(self._lowest)


def note_cleared_records(
    flow_control: Any, topics: Collection[str], dropped: DroppedOffsets
) -> None:
    """Make ``flow_control`` note the offsets of the records each buffer clear drops.

    faust clears every stream buffer when a rebalance starts and whenever it resumes the
    flow. The records that a clear drops after the consumer has fetched past them are
    never fetched again unless a seek goes back to them.
    """
    if getattr(flow_control, "_stemedb_noting", False):
        return
    clear = flow_control.clear
    topic_names = frozenset(topics)

    def noting_clear() -> None:
        for queue in list(flow_control._queues):
            for item in list(getattr(queue, "_queue", ())):
                message = getattr(item, "message", None)
                if message is not None and message.tp.topic in topic_names:
                    dropped.note(message.tp, message.offset)
        clear()

    flow_control.clear = noting_clear
    flow_control._stemedb_noting = True


def install_redelivery(consumer: Any) -> None:
    """Turn off ``consumer``'s read-position check; see :class:`ReadPositions`.

    Must run before faust starts fetching, which captures the positions' lookup.
    """
    if not isinstance(consumer._read_offset, ReadPositions):
        positions = ReadPositions()
        positions.update(consumer._read_offset)
        consumer._read_offset = positions


def install_ack_tidy(
    consumer: Any,
    may_pass: Callable[[Hole], bool] = lambda hole: False,
    committing: dict[Any, tuple[int, float]] | None = None,
) -> None:
    """Make ``consumer`` tidy a partition's acks each time it computes a commit offset.

    faust itself commits past a single missing offset at the head of the acks, since a
    transaction marker takes an offset without a record. A record dropped on a takeover
    looks the same, so no commit passes a hole unless ``may_pass`` allows it.

    Each offset handed to a commit goes into ``committing`` with the monotonic time. faust
    removes those acks at once but records the committed offset only when the commit
    succeeds, which can take seconds under load.
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
        if result is not None and committing is not None:
            committing[tp] = (result, time.monotonic())
        return result

    consumer._new_offset = new_offset
    consumer._stemedb_ack_tidy = True


class CommitBarrier:
    """Holds the gate between two records while faust commits offsets.

    faust flushes the producer before an at-least-once commit, and the flush ends only
    when the producer's buffer is empty. A stream that keeps sending keeps the buffer
    from emptying, and under a backlog commits took from 8 s to over 20 s. Under
    exactly-once, faust commits the transaction without flushing its own send buffer,
    where table changelog writes wait. A record's state write could then land in the
    next transaction while its offset was committed in this one, and a kill lost it.

    The gate calls :meth:`enter` before and :meth:`leave` after each record. A commit
    waits until the gate is between records, so every record handled so far is
    acknowledged and every send it made is in faust's buffer, flushes that buffer under
    exactly-once, and keeps the gate waiting until the commit ends.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def enter(self) -> None:
        """Wait until no commit is in flight, then mark the gate as handling a record."""
        while not self._open.is_set():
            await self._open.wait()
        self._idle.clear()

    def leave(self) -> None:
        """Mark the gate as between records."""
        self._idle.set()

    def install(self, consumer: Any) -> None:
        """Make ``consumer``'s commits wait for the gate and hold it until they end."""
        if getattr(consumer, "_stemedb_commit_barrier", None) is self:
            return
        commit_tps = consumer._commit_tps

        async def barred_commit(tps: Any, *args: Any, **kwargs: Any) -> bool:
            self._open.clear()
            try:
                await self._idle.wait()
                if consumer.in_transaction:
                    await consumer.app.producer.buffer.flush()
                result: bool = await commit_tps(tps, *args, **kwargs)
                return result
            finally:
                self._open.set()

        consumer._commit_tps = barred_commit
        consumer._stemedb_commit_barrier = self


class AckHoleRepair(Service):
    """Service that seeks a partition back to its committed offset when its acks stall."""

    def __init__(
        self,
        consumer: Callable[[], Any],
        topics: Collection[str],
        handled: HandledOffsets,
        on_seek: Callable[[Any, int], None] = lambda tp, offset: None,
        *,
        dropped: DroppedOffsets | None = None,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = HOLE_GRACE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._consumer = consumer
        self.topics = frozenset(topics)
        self.handled = handled
        self.on_seek = on_seek
        self.dropped = dropped if dropped is not None else DroppedOffsets()
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        # Hole -> monotonic time it was first seen unchanged.
        self._pending: dict[Hole, float] = {}
        # Seeks made per hole, and holes that held no record after all of them.
        self._seeks: dict[Hole, int] = {}
        self._passable: set[Hole] = set()
        # Partition -> offset of the commit in flight and the monotonic time it started.
        self.committing: dict[Any, tuple[int, float]] = {}

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
        """Fetch dropped records again, seek every hole older than the grace period.

        Returns the holes it sought.
        """
        consumer = self._consumer()
        assigned = {tp for tp in consumer.assignment() if tp.topic in self.topics}
        await self._learn_committed(consumer, assigned)
        committed = dict(consumer._committed_offset)
        self.handled.keep_only(assigned)
        self.handled.prune(committed)
        await self._fetch_dropped(consumer, assigned, committed)
        holes = find_holes(
            self._with_commits_in_flight(committed, now),
            consumer._acked,
            consumer._gap,
            assigned,
        )
        self._pending = {hole: self._pending.get(hole, now) for hole in holes}
        repaired: list[Hole] = []
        for hole, since in list(self._pending.items()):
            if now - since < self.grace_seconds:
                continue
            if self._seeks.get(hole, 0) >= SEEKS_BEFORE_PASSING:
                # Fetched again several times and still missing: these offsets hold no
                # record, as with a transaction marker.
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
            await self._seek(consumer, hole.tp, hole.first)
            self._seeks[hole] = self._seeks.get(hole, 0) + 1
            del self._pending[hole]
            repaired.append(hole)
        return repaired

    def _with_commits_in_flight(
        self, committed: Mapping[Any, int | None], now: float
    ) -> dict[Any, int | None]:
        """Return ``committed`` raised to the offsets of the commits still in flight.

        faust drops the acks of a commit when it starts; until it ends, the acks begin
        above the committed offset without any record missing.
        """
        offsets = dict(committed)
        for tp, (offset, since) in list(self.committing.items()):
            committed_offset = offsets.get(tp)
            caught_up = committed_offset is not None and committed_offset >= offset
            if caught_up or now - since > COMMIT_WAIT_SECONDS:
                del self.committing[tp]
            else:
                offsets[tp] = offset
        return offsets

    async def _seek(self, consumer: Any, tp: Any, offset: int) -> None:
        await consumer.seek(tp, offset)
        self.on_seek(tp, offset)

    async def _fetch_dropped(
        self, consumer: Any, assigned: Collection[Any], committed: Mapping[Any, int | None]
    ) -> None:
        for tp, offset in self.dropped.take().items():
            start = committed.get(tp)
            if tp not in assigned or (start is not None and offset < start):
                # Revoked, or committed since: the records are handled, or the next
                # owner seeks to the committed offset.
                continue
            logger.info(
                "%s[%d]: records from offset %d were dropped from the stream buffer, "
                "fetching them again",
                tp.topic,
                tp.partition,
                offset,
            )
            await self._seek(consumer, tp, offset)

    async def _learn_committed(self, consumer: Any, assigned: Collection[Any]) -> None:
        """Ask the broker for committed offsets that faust does not know.

        faust has no committed offset for a partition whose committed offset is 0, or
        that it took over without seeking. Counting from offset 0 there would take a
        whole partition for a hole.
        """
        thread = getattr(consumer, "_thread", None)
        if thread is None:
            return
        for tp in assigned:
            if consumer._committed_offset.get(tp) is not None or not consumer._acked.get(tp):
                continue
            offset = await thread.call_thread(thread._ensure_consumer().committed, tp)
            if offset is not None and offset >= 0 and consumer._committed_offset.get(tp) is None:
                consumer._committed_offset[tp] = offset
