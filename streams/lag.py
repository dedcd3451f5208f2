"""Consumer lag of the gate's consumer group, read from the broker like Kafka's own tools.

The lag of a partition is its end offset (the offset the next record will get) minus
the offset the group committed, the same figure as the LAG column of
``kafka-consumer-groups.sh --describe``. Both offsets are read from the broker every
``worker.lag_poll_interval_seconds``: end offsets with a ListOffsets request, committed
offsets with an OffsetFetch request to the group coordinator. faust's own in-memory
positions are not used, since they run ahead of what is committed and the tools would
disagree with them.

Each worker reports only the partitions of ``assertions`` and ``admin-commands``
assigned to it, so the series of several workers add up without double counting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from mode import Service

from streams.metrics import GateMetrics, PartitionOffsets

logger = logging.getLogger(__name__)

# Logged at most once per this many seconds while reads keep failing.
ERROR_LOG_EVERY_SECONDS = 60.0


class OffsetReader:
    """Reads end and committed offsets of one consumer group, over its own connections."""

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        client_id: str,
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.client_id = client_id
        # Keyword arguments of streams.kafka_security.aiokafka_security_options.
        self.security: Mapping[str, Any] = security or {}
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def read(self, partitions: Collection[TopicPartition]) -> list[PartitionOffsets]:
        """Return the offsets of ``partitions``, sorted by topic and partition."""
        if not partitions:
            return []
        admin, consumer = await self._clients()
        wanted = sorted(partitions)

        # 1. Committed first: a record that arrives between the two reads then counts
        # as lag instead of producing a negative one.
        committed = await admin.list_consumer_group_offsets(self.group_id, partitions=wanted)

        # 2. End offsets, and beginnings for partitions the group never committed.
        ends = await consumer.end_offsets(wanted)
        never_committed = [tp for tp in wanted if _offset(committed.get(tp)) is None]
        beginnings = await consumer.beginning_offsets(never_committed) if never_committed else {}

        return [
            PartitionOffsets(
                topic=tp.topic,
                partition=tp.partition,
                end=int(ends[tp]),
                committed=_offset(committed.get(tp)),
                beginning=int(beginnings.get(tp, 0)),
            )
            for tp in wanted
        ]

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                **self.security,
            )
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            # No group: this consumer only requests offsets and never joins or commits.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                **self.security,
            )
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        """Close both connections; a failure to close one does not leave the other open."""
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            if admin is not None:
                await admin.close()


def _offset(meta: Any) -> int | None:
    # OffsetFetch returns -1 for a partition the group has no commit for.
    if meta is None or meta.offset < 0:
        return None
    return int(meta.offset)


class StallDetector:
    """Finds assigned partitions that have lag while their committed offset stays put.

    A consumer can stop committing or fetching one partition without any error while it
    keeps serving the others and reports healthy. Issue trackers of Kafka clients in
    several languages report this after broker restarts and rebalances, and the fault
    harness showed it with faust-streaming 0.15.3 after a kill -9. Only a new
    assignment clears it, so the worker checks from the outside: committed offset
    versus end offset.
    """

    def __init__(self, stall_timeout_seconds: float) -> None:
        self.stall_timeout_seconds = stall_timeout_seconds
        self._stuck_since: dict[tuple[str, int], tuple[int | None, float]] = {}

    def observe(self, offsets: Collection[PartitionOffsets], now: float) -> list[str]:
        """Record one poll at monotonic time ``now``; return the stalled partitions."""
        stalled: list[str] = []
        current: dict[tuple[str, int], tuple[int | None, float]] = {}
        for item in offsets:
            key = (item.topic, item.partition)
            if item.lag <= 0:
                continue
            previous = self._stuck_since.get(key)
            if previous is not None and previous[0] == item.committed:
                current[key] = previous
            else:
                current[key] = (item.committed, now)
            if now - current[key][1] >= self.stall_timeout_seconds:
                stalled.append(
                    f"{item.topic}[{item.partition}] committed={item.committed} end={item.end} "
                    f"unchanged for {now - current[key][1]:.0f}s"
                )
        self._stuck_since = current
        return stalled


class LagMonitor(Service):
    """Polls the offsets of this worker's assigned partitions into :class:`GateMetrics`."""

    def __init__(
        self,
        reader: OffsetReader,
        metrics: GateMetrics,
        assigned: Callable[[], Collection[TopicPartition]],
        topics: Collection[str],
        interval_seconds: float,
        stall_timeout_seconds: float = 120.0,
        exit_on_stall: bool = False,
        busy: Callable[[], bool] = lambda: False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stalls = StallDetector(stall_timeout_seconds)
        self.exit_on_stall = exit_on_stall
        self.busy = busy
        self.stalled: list[str] = []
        self.reader = reader
        self.metrics = metrics
        self.assigned = assigned
        self.topics = frozenset(topics)
        self.interval_seconds = interval_seconds
        self._last_error_log = -ERROR_LOG_EVERY_SECONDS

    async def on_started(self) -> None:
        logger.info(
            "consumer lag: reading offsets of group %r every %.0fs for topics %s",
            self.reader.group_id,
            self.interval_seconds,
            ", ".join(sorted(self.topics)),
        )

    async def on_stop(self) -> None:
        await self.reader.close()

    @Service.task
    async def _poll_forever(self) -> None:
        while not self.should_stop:
            await self.poll_once()
            await self.sleep(self.interval_seconds)

    async def poll_once(self) -> None:
        """Read the offsets once; a Kafka or network error is counted and logged, not raised."""
        partitions = [
            TopicPartition(tp.topic, tp.partition)
            for tp in self.assigned()
            if tp.topic in self.topics
        ]
        try:
            offsets = await self.reader.read(partitions)
        except asyncio.CancelledError:
            raise
        except (KafkaError, OSError) as exc:
            self.metrics.record_offsets_failed()
            # The clients may be half-broken after a failure: open new ones next time.
            await self._close_quietly()
            now = time.monotonic()
            if now - self._last_error_log >= ERROR_LOG_EVERY_SECONDS:
                self._last_error_log = now
                logger.warning(
                    "consumer lag: reading offsets of group %r on %s failed, the lag "
                    "metric keeps its previous values: %r",
                    self.reader.group_id,
                    self.reader.bootstrap_servers,
                    exc,
                )
            return
        self.metrics.record_offsets(offsets, time.time())
        if self.busy():
            # Rebalancing or restoring tables: no partition is expected to move.
            self.stalls = StallDetector(self.stalls.stall_timeout_seconds)
            self.stalled = []
            return
        self.stalled = self.stalls.observe(offsets, time.monotonic())
        if self.stalled:
            logger.error("consumer stalled on %s", "; ".join(self.stalled))
            if self.exit_on_stall:
                # Crashing the service stops the worker with an error; its supervisor
                # starts it again, and the new assignment resumes the partition.
                await self.crash(RuntimeError(f"partitions stalled: {self.stalled}"))

    async def _close_quietly(self) -> None:
        try:
            await self.reader.close()
        except asyncio.CancelledError:
            raise
        except (KafkaError, OSError) as exc:
            logger.info("consumer lag: closing the offset clients failed: %r", exc)
