"""Publishing admin commands and waiting for the worker's results.

A write request becomes one or more :class:`~schemas.admin.AdminCommand` records on
``admin-commands``, keyed by the agent the command is about, so the worker that owns
the agent's partition applies it. ``set_thresholds`` goes to every partition, because
each worker keeps the thresholds of its own partitions. The worker publishes the result
of each command on ``admin-events``. The read model's feed passes those events to
:class:`ResultWaiters`, which completes the requests waiting with ``?wait=true``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from admin_api.errors import CommandTimeout, Conflict, InvalidRequest, NotFound, NotReady
from admin_api.metrics import ApiMetrics
from admin_api.read_model import ReadModel
from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, CommandResult

logger = logging.getLogger(__name__)

THRESHOLDS_RECORD_KEY = b"thresholds"
MAX_COMMAND_ID_LENGTH = 200


def new_command_id() -> str:
    return uuid.uuid4().hex


def build_command(
    kind: AdminCommandKind,
    *,
    command_id: str,
    issued_by: str,
    agent_id: str | None = None,
    item_id: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> AdminCommand:
    return AdminCommand(
        command_id=command_id,
        kind=kind,
        agent_id=agent_id,
        item_id=item_id,
        reason=reason,
        note=note,
        parameters=dict(parameters or {}),
        issued_by=issued_by,
        issued_at=datetime.now(UTC),
    )


class CommandSink(Protocol):
    """Destination of published commands: Kafka in the service, a fake in unit tests."""

    async def send(self, commands: Sequence[AdminCommand]) -> None:
        """Publish each command keyed by its ``agent_id``, all or raise."""

    async def partitions(self) -> list[int]:
        """Return the partition numbers of ``admin-commands``."""

    async def send_to_partitions(self, command: AdminCommand, partitions: Sequence[int]) -> None:
        """Publish ``command`` once to each of ``partitions``."""


class KafkaCommandSink:
    """Publishes commands to ``admin-commands`` with an idempotent aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(self, commands: Sequence[AdminCommand]) -> None:
        # send() only queues a record, and its future completes when the broker has it.
        # A bulk request so goes out in batches instead of one round trip per command.
        deliveries = []
        for command in commands:
            if command.agent_id is None:
                raise ValueError(f"command {command.command_id} has no agent_id to key it by")
            deliveries.append(
                await self.producer.send(
                    self.topic, value=_encode(command), key=command.agent_id.encode()
                )
            )
        await asyncio.gather(*deliveries)

    async def partitions(self) -> list[int]:
        return sorted(await self.producer.partitions_for(self.topic))

    async def send_to_partitions(self, command: AdminCommand, partitions: Sequence[int]) -> None:
        value = _encode(command)
        deliveries = [
            await self.producer.send(
                self.topic, value=value, key=THRESHOLDS_RECORD_KEY, partition=partition
            )
            for partition in partitions
        ]
        await asyncio.gather(*deliveries)


@asynccontextmanager
async def _publishing(commands: Sequence[AdminCommand]) -> AsyncIterator[None]:
    """Turn a Kafka failure while publishing into a 503 that names the first command."""
    try:
        yield
    except KafkaError as exc:
        first = commands[0].command_id if commands else None
        logger.warning(
            "publishing %d command(s) failed, first id %s: %s", len(commands), first, exc
        )
        raise NotReady(
            f"publishing to admin-commands failed ({type(exc).__name__}: {exc}); some of the "
            "commands may have been published, so retry with the same Idempotency-Key",
            extra={"command_id": first},
            headers={"Retry-After": "1"},
        ) from exc


def _encode(command: AdminCommand) -> bytes:
    return orjson.dumps(command.model_dump(mode="json"))


class _Waiter:
    """Collects the result events of one command id until ``expected`` have arrived."""

    def __init__(self, command: AdminCommand, expected: int) -> None:
        self.command_id = command.command_id
        self.kind = command.kind.value
        self.expected = expected
        self.events: list[AdminEvent] = []
        self._partitions: set[int] = set()
        self.done: asyncio.Future[list[AdminEvent]] = asyncio.get_running_loop().create_future()

    def add(self, event: AdminEvent) -> None:
        if self.done.done():
            return
        partition = event.detail.get("partition")
        if isinstance(partition, int) and not isinstance(partition, bool):
            if partition in self._partitions:
                return
            self._partitions.add(partition)
        self.events.append(event)
        if len(self.events) >= self.expected:
            self.done.set_result(list(self.events))


class ResultWaiters:
    """Requests waiting for result events, by command id."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[_Waiter]] = {}

    def __len__(self) -> int:
        return sum(len(waiters) for waiters in self._waiting.values())

    @contextmanager
    def expect(self, command: AdminCommand, expected: int = 1) -> Iterator[_Waiter]:
        """Register a waiter before publishing, so that no result can pass unseen."""
        command_id = command.command_id
        waiter = _Waiter(command, expected)
        self._waiting.setdefault(command_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiting.get(command_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(command_id, None)
            if not waiter.done.done():
                waiter.done.cancel()

    def deliver(self, event: AdminEvent) -> None:
        """Hand a ``command_result`` event to the requests waiting for its command id."""
        if event.command_id is None:
            return
        for waiter in list(self._waiting.get(event.command_id, ())):
            waiter.add(event)


def result_error(event: AdminEvent, command_id: str) -> Exception | None:
    """Return the HTTP error for a result other than ``applied``, or ``None``."""
    extra = {"command_id": command_id, "detail": dict(event.detail)}
    message = str(event.detail.get("error") or event.detail.get("message") or "")
    if event.result is CommandResult.NOT_FOUND:
        return NotFound(message or "the worker does not know this item or agent", extra=extra)
    if event.result is CommandResult.CONFLICT:
        return Conflict(message or "the item is already decided", extra=extra)
    if event.result is CommandResult.INVALID:
        field = str(event.detail.get("field") or "body")
        return InvalidRequest(field, message or "the worker rejected the command", extra=extra)
    return None


class CommandService:
    """Checks, publishes and optionally waits for commands on behalf of request handlers."""

    def __init__(
        self,
        read_model: ReadModel,
        timeout_seconds: float,
        metrics: ApiMetrics,
        sink: CommandSink | None = None,
    ) -> None:
        self.read_model = read_model
        self.timeout_seconds = timeout_seconds
        self.metrics = metrics
        self.sink = sink
        self.waiters = ResultWaiters()
        read_model.add_result_listener(self.waiters.deliver)

    def _require_sink(self) -> CommandSink:
        if self.sink is None:
            raise NotReady("the Kafka producer has not started yet; retry shortly")
        return self.sink

    def check_reuse(self, command: AdminCommand) -> None:
        """Raise :class:`Conflict` when the command id already names a different command."""
        known = self.read_model.commands.get(command.command_id)
        if known is None or known.kind is None:
            return
        same = (
            known.kind == command.kind.value
            and known.agent_id == command.agent_id
            and known.item_id == command.item_id
        )
        if not same:
            raise Conflict(
                f"Idempotency-Key {command.command_id!r} was already used for a {known.kind} "
                f"command about agent {known.agent_id} item {known.item_id}; use a new key",
                field="Idempotency-Key",
                extra={"command_id": command.command_id},
            )

    async def publish(self, commands: Sequence[AdminCommand]) -> None:
        """Publish commands without waiting for results."""
        sink = self._require_sink()
        for command in commands:
            self.check_reuse(command)
        for command in commands:
            self.read_model.commands.record_command(command)
        async with _publishing(commands):
            await sink.send(commands)
        for command in commands:
            self.metrics.commands.labels(command.kind.value).inc()
            logger.info(
                "published command %s: %s agent=%s item=%s by %s",
                command.command_id,
                command.kind.value,
                command.agent_id,
                command.item_id,
                command.issued_by,
            )

    async def publish_and_wait(self, commands: Sequence[AdminCommand]) -> list[AdminEvent | None]:
        """Publish commands and return each one's first result event, in order.

        A command whose result does not arrive within the command timeout gets
        ``None``; :func:`single_result` turns that into :class:`CommandTimeout`.
        """
        waiters: list[_Waiter] = []
        with ExitStack() as stack:
            for command in commands:
                waiters.append(stack.enter_context(self.waiters.expect(command)))
            await self.publish(commands)
            await self._wait(waiters)
            return [waiter.events[0] if waiter.events else None for waiter in waiters]

    async def publish_everywhere(self, command: AdminCommand, wait: bool) -> list[AdminEvent]:
        """Publish ``command`` to every partition; with ``wait``, return each one's result."""
        sink = self._require_sink()
        self.check_reuse(command)
        async with _publishing([command]):
            partitions = await sink.partitions()
        record = self.read_model.commands.record_command(command)
        record.expected_results = len(partitions)
        with self.waiters.expect(command, len(partitions)) as waiter:
            async with _publishing([command]):
                await sink.send_to_partitions(command, partitions)
            self.metrics.commands.labels(command.kind.value).inc()
            logger.info(
                "published command %s: %s to %d partition(s) by %s",
                command.command_id,
                command.kind.value,
                len(partitions),
                command.issued_by,
            )
            if not wait:
                return []
            await self._wait([waiter])
            if not waiter.done.done():
                raise self.timeout_error(command.command_id)
            return list(waiter.events)

    async def _wait(self, waiters: Sequence[_Waiter]) -> None:
        """Wait until every waiter is done or the command timeout passes."""
        futures = [waiter.done for waiter in waiters]
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await asyncio.gather(*futures)
        except TimeoutError:
            missing = [waiter.command_id for waiter in waiters if not waiter.done.done()]
            logger.warning(
                "no result for %d of %d command(s) within %.1f s, for example %s",
                len(missing),
                len(waiters),
                self.timeout_seconds,
                missing[0] if missing else None,
            )
        for waiter in waiters:
            for event in waiter.events:
                result = event.result.value if event.result else "unknown"
                self.metrics.command_results.labels(waiter.kind, result).inc()

    def timeout_error(self, command_id: str) -> CommandTimeout:
        return CommandTimeout(
            f"no result from the gate worker within {self.timeout_seconds:g} s; the command "
            f"stays queued, and GET /v1/admin/commands/{command_id} shows its status",
            extra={"command_id": command_id},
        )

    async def issue(self, command: AdminCommand, wait: bool) -> AdminEvent | None:
        """Publish one command and, with ``wait``, return its result or raise its error.

        Without ``wait`` it returns None, and the route returns 202.
        """
        if not wait:
            await self.publish([command])
            return None
        events = await self.publish_and_wait([command])
        return self.single_result(events, command.command_id)

    def single_result(self, events: Sequence[AdminEvent | None], command_id: str) -> AdminEvent:
        """Return the one result, or raise its HTTP error or :class:`CommandTimeout`."""
        event = events[0] if events else None
        if event is None:
            raise self.timeout_error(command_id)
        error = result_error(event, command_id)
        if error is not None:
            raise error
        return event
