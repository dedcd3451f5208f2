"""Background task that reads the gate's state topics into the read model.

The feed assigns itself every partition of :data:`~admin_api.read_model.READ_TOPICS`
(no consumer group, nothing committed), reads from the beginning, and keeps reading
until it is stopped. At start it records each partition's end offset. Once its
position reaches all of them, it marks the read model ready, and ``/readyz`` and the
admin routes start serving requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from admin_api.errors import AdminApiError
from admin_api.read_model import READ_TOPICS, ReadModel
from streams.kafka_security import aiokafka_security_options
from streams.settings import GateSettings
from streams.topics import ADMIN_COMMANDS
from streams.topicsetup import admin_client

logger = logging.getLogger(__name__)

CLIENT_ID = "stemedb-admin-api"
POLL_TIMEOUT_MS = 500
RETRY_AFTER_ERROR_SECONDS = 1.0


class StateFeed:
    """Consumes the state topics into ``read_model`` while the ``async with`` block runs."""

    def __init__(self, settings: GateSettings, read_model: ReadModel) -> None:
        self.settings = settings
        self.read_model = read_model
        self._short_names = {settings.kafka.topic(name): name for name in READ_TOPICS}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lagging: dict[TopicPartition, int] = {}
        self._started_at = 0.0
        self.failure: str | None = None

    async def __aenter__(self) -> StateFeed:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def problems(self) -> list[str]:
        """List why the read model is not serving current data yet."""
        problems: list[str] = []
        if self.failure is not None:
            problems.append(f"state feed stopped: {self.failure}")
        if not self.read_model.ready:
            behind = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(self._lagging))
            problems.append(f"reading state topics up to their end offsets at start: {behind}")
        return problems

    async def start(self) -> None:
        """Assign every partition, seek to the beginning and start the reading task.

        Raises :class:`AdminApiError` naming the topics that do not exist.
        """
        # 1. Find every partition; a missing topic is a setup error, not a wait.
        kafka = self.settings.kafka
        partitions = await self._find_partitions()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **aiokafka_security_options(kafka),
        )
        self._consumer = consumer
        try:
            await consumer.start()

            # 2. Read from the beginning up to the end offsets of now before serving.
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end_offsets = await consumer.end_offsets(partitions)
            self._lagging = {tp: offset for tp, offset in end_offsets.items() if offset > 0}
            self._started_at = time.monotonic()
            logger.info(
                "reading %d partitions of %d state topics from the beginning; %d hold records",
                len(partitions),
                len(self._short_names),
                len(self._lagging),
            )
            await self._check_caught_up()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(consumer), name="admin-api-state-feed")

    async def _find_partitions(self) -> list[TopicPartition]:
        """Return every partition of the read topics; a missing topic is a setup error."""
        kafka = self.settings.kafka
        names = list(self._short_names)
        async with admin_client(
            kafka.bootstrap_servers, security=aiokafka_security_options(kafka)
        ) as client:
            existing = set(await client.list_topics())
            missing = [name for name in names if name not in existing]
            if missing:
                raise AdminApiError(
                    f"topics {', '.join(missing)} do not exist on Kafka at "
                    f"{kafka.bootstrap_servers}; create them with 'stemedb-gate topics setup' "
                    "using the same config"
                )
            described = await client.describe_topics(names)
        partitions: list[TopicPartition] = []
        for topic in described:
            name = topic["topic"]
            if topic["error_code"] != 0:
                raise AdminApiError(
                    f"describing topic {name!r} on Kafka at {kafka.bootstrap_servers} failed "
                    f"with error code {topic['error_code']}"
                )
            numbers = sorted(p["partition"] for p in topic["partitions"])
            partitions.extend(TopicPartition(name, number) for number in numbers)
            if self._short_names[name] == ADMIN_COMMANDS:
                self.read_model.commands.partitions = max(1, len(numbers))
        return partitions

    async def stop(self) -> None:
        """Cancel the reading task and close the consumer, on every path."""
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        try:
            if task is not None:
                task.cancel()
                # wait() does not raise the task's own CancelledError, only one that
                # cancels this coroutine, and the consumer is closed either way.
                await asyncio.wait([task])
        finally:
            if consumer is not None:
                await consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                for tp, messages in batches.items():
                    topic = self._short_names[tp.topic]
                    for message in messages:
                        self.read_model.apply(topic, message.key, message.value)
                    # Let requests run between partitions of a large initial batch.
                    await asyncio.sleep(0)
                if not self.read_model.ready:
                    await self._check_caught_up()
                self.failure = None
            except KafkaError as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "reading the state topics failed, retrying in %.1f s: %s",
                    RETRY_AFTER_ERROR_SECONDS,
                    self.failure,
                )
                await asyncio.sleep(RETRY_AFTER_ERROR_SECONDS)
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                logger.exception(
                    "unexpected error in the state feed, retrying in %.1f s",
                    RETRY_AFTER_ERROR_SECONDS,
                )
                await asyncio.sleep(RETRY_AFTER_ERROR_SECONDS)

    async def _check_caught_up(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp, end_offset in list(self._lagging.items()):
            if await consumer.position(tp) >= end_offset:
                del self._lagging[tp]
        if not self._lagging:
            self.read_model.ready = True
            logger.info(
                "read model ready after %.1f s: %s",
                time.monotonic() - self._started_at,
                self.read_model.counts(),
            )
