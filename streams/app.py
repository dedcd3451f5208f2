"""The faust application: topics, RocksDB-backed tables, the gate agent and the sweeper.

Tables (all changelogged to Kafka, all stored in RocksDB under ``worker.data_dir``):

- ``agents``: one :class:`~streams.decision.AgentState` per agent id.
- ``seen``: the duplicate index, ``<agent_id>/id:<id>`` and ``<agent_id>/claim:<hash>``
  to a :class:`~streams.decision.SeenEntry`. Written only while the agent's event is
  current, so it follows the event's partition. Its changelog is compacted and also
  deletes entries older than the look-back plus a day.
- ``quarantine``: item id to the :class:`~schemas.QuarantineItem`.
- ``commands``: ``<command_id>@<partition>`` to the result of an applied command.
- ``config``: ``thresholds`` to this partition's runtime threshold overrides.

Every write happens while an event of the agent's partition is current: a record on
``assertions`` or a command on ``admin-commands``, both keyed by agent id with the same
partition count. So faust sends the write to that partition of the changelog, and a
worker that takes over the partition restores exactly the state of the agents it owns.
Table keys go to the changelog as JSON, not as the raw record key, which is why no
table uses faust's key partitioner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams.commands import CommandProcessor
from streams.gate import Gate
from streams.kafka_security import aiokafka_security_options, faust_broker_credentials
from streams.lag import LagMonitor, OffsetReader
from streams.metrics import GateMetrics
from streams.redelivery import (
    AckHoleRepair,
    CommitBarrier,
    install_ack_tidy,
    install_redelivery,
    note_cleared_records,
)
from streams.settings import GateSettings
from streams.topics import (
    ACCEPTED,
    ADMIN_COMMANDS,
    ADMIN_EVENTS,
    ASSERTIONS,
    BANNED,
    BREAKER_STATE,
    CONFIG_STATE,
    INVALID,
    QUARANTINE,
    QUARANTINE_STATE,
)
from streams.transactions import send_in_source_transaction

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
# A command id repeated within this time gets its first result again.
COMMAND_RETENTION_MS = 7 * DAY_MS


def _broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


class GateApp(faust.App):
    """faust's App without its Monitor sensor on the per-message path.

    The Monitor records statistics for faust's own web pages on every message, table
    read and write, and send. The gate exports its metrics to Prometheus instead. In
    one run of benchmarks/gate_bench.py with 30,000 records the worker drained 977
    records a second with the Monitor among the sensors and 1,046 without it. faust
    still calls the Monitor directly in a few places, so it stays the app's ``monitor``.
    """

    def on_init_dependencies(self) -> Iterable[Any]:
        dependencies = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return dependencies


def create_app(settings: GateSettings, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the gate's faust app for ``settings``; the caller runs it with a faust Worker."""
    kafka = settings.kafka
    worker = settings.worker
    app = GateApp(
        kafka.app_id,
        broker=_broker_urls(kafka.bootstrap_servers),
        broker_credentials=faust_broker_credentials(kafka),
        store="rocksdb://",
        datadir=str(worker.data_dir),
        processing_guarantee=kafka.processing_guarantee,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout_seconds,
        broker_heartbeat_interval=kafka.session_timeout_seconds / 10,
        web_enabled=True,
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_in_thread=False,
        # Table keys are agent ids as raw UTF-8, the same bytes producers use as record
        # keys; table values are JSON. Topics set their own serializers.
        key_serializer="raw",
        value_serializer="json",
        # Changelog replay after a lost RocksDB folder must finish before records flow.
        table_standby_replicas=0,
        producer_max_request_size=max(1_048_576, kafka.max_record_bytes * 2),
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            kafka.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=kafka.partitions,
        )

    lookback_ms = int(settings.content_defense.duplicate_lookback_hours * 3_600_000)
    # faust's defaults are a 64 MiB memtable (up to three) and a 2 GiB cache per store,
    # with a store per table and partition. With them a million agents took over 500 MiB.
    store_options = {
        "write_buffer_size": worker.rocksdb_write_buffer_mib * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": worker.rocksdb_block_cache_mib * 1024 * 1024,
    }
    tables = {
        "agents": app.Table(
            "agents",
            key_type=str,
            partitions=kafka.partitions,
            options=store_options,
        ),
        "seen": app.Table(
            "seen",
            key_type=str,
            partitions=kafka.partitions,
            # RocksDB drops entries a day after the look-back; reads check the age anyway.
            options={**store_options, "ttl": int((lookback_ms + DAY_MS) / 1000)},
            extra_topic_configs={
                "cleanup.policy": "compact,delete",
                "retention.ms": str(lookback_ms + DAY_MS),
            },
        ),
        "quarantine": app.Table(
            "quarantine",
            key_type=str,
            partitions=kafka.partitions,
            options=store_options,
        ),
        "commands": app.Table(
            "commands",
            key_type=str,
            partitions=kafka.partitions,
            options={**store_options, "ttl": int(COMMAND_RETENTION_MS / 1000)},
            extra_topic_configs={
                "cleanup.policy": "compact,delete",
                "retention.ms": str(COMMAND_RETENTION_MS),
            },
        ),
        "config": app.Table(
            "config", key_type=str, partitions=kafka.partitions, options=store_options
        ),
    }
    metrics = GateMetrics(
        registry if registry is not None else CollectorRegistry(),
        top_agents=worker.metrics_top_agents,
    )
    gate = Gate(
        settings=settings,
        tables=tables,
        outputs={
            name: raw_topic(name)
            for name in (
                ACCEPTED,
                ADMIN_COMMANDS,
                QUARANTINE,
                BANNED,
                INVALID,
                ADMIN_EVENTS,
                QUARANTINE_STATE,
                BREAKER_STATE,
                CONFIG_STATE,
            )
        },
        metrics=metrics,
        committed_offset=lambda tp: app.consumer._committed_offset.get(tp),  # type: ignore[attr-defined]
    )
    app.gate = gate  # type: ignore[attr-defined]
    commands = CommandProcessor(gate, tables["commands"])

    assertions = raw_topic(ASSERTIONS)

    repair = AckHoleRepair(
        lambda: app.consumer,
        topics=(kafka.topic(ASSERTIONS), kafka.topic(ADMIN_COMMANDS)),
        handled=gate.handled,
        on_seek=lambda tp, offset: metrics.redeliveries.inc(),
    )

    barrier = CommitBarrier()

    @app.agent(assertions, name="gate")
    async def gate_agent(stream: Any) -> None:
        # Agents start before faust fetches or commits, so these fixes are in place.
        install_redelivery(app.consumer)
        note_cleared_records(app.flow_control, repair.topics, repair.dropped)
        install_ack_tidy(app.consumer, repair.may_pass, repair.committing)
        barrier.install(app.consumer)
        if app.in_transaction:
            send_in_source_transaction(app)
        async for event in stream.events():
            await barrier.enter()
            try:
                await gate.handle_assertion(event)
                # Acknowledged now, not when the next record arrives, so a commit that
                # waits for the gate to be between records includes this one.
                event.ack()
            finally:
                barrier.leave()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        # Another worker may process these records next, and this one again later.
        # faust seeks every partition it assigns to the committed offset, which covers
        # the records that the clear at the start of the rebalance dropped.
        gate.handled.forget(revoked)
        repair.dropped.forget(revoked)

    @app.agent(raw_topic(ADMIN_COMMANDS), name="commands")
    async def command_agent(stream: Any) -> None:
        async for event in stream.events():
            await commands.handle(event)

    @app.timer(interval=worker.sweep_interval_seconds, on_leader=False)  # type: ignore[untyped-decorator]
    async def sweep() -> None:
        await gate.sweep_agents()

    # faust starts services after table recovery and stops them with the app.
    lag_monitor = LagMonitor(
        OffsetReader(
            kafka.bootstrap_servers,
            kafka.app_id,
            f"{kafka.app_id}-lag",
            security=aiokafka_security_options(kafka),
        ),
        metrics,
        assigned=lambda: app.consumer.assignment(),
        topics=(kafka.topic(ASSERTIONS), kafka.topic(ADMIN_COMMANDS)),
        interval_seconds=worker.lag_poll_interval_seconds,
        stall_timeout_seconds=worker.stall_timeout_seconds,
        exit_on_stall=worker.exit_on_stall,
        busy=lambda: bool(app.rebalancing or app.in_recovery),
    )
    app.lag_monitor = lag_monitor  # type: ignore[attr-defined]
    app.service(
        lag_monitor  # type: ignore[arg-type]
    )
    app.service(repair)  # type: ignore[arg-type]

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        problems = readiness_problems(app)
        status = 200 if not problems else 503
        return web.json({"ready": not problems, "problems": problems}, status=status)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body, content_type = metrics.exposition()
        return web.bytes(body, content_type=content_type)

    @app.page("/state/agents/{agent_id}")
    async def agent_state(web: Any, request: Any, agent_id: str) -> Any:
        return web.json(gate.describe_agent(agent_id))

    return app


def readiness_problems(app: faust.App) -> list[str]:
    """List why the worker is not ready: starting, rebalancing, restoring, or a task exited."""
    problems: list[str] = []
    if not app.started:
        problems.append("app not started")
    if app.rebalancing:
        problems.append("rebalancing")
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    if app.in_recovery or not recovery.completed.is_set():
        problems.append("restoring tables from changelogs")
    if app.consumer.crashed:
        problems.append(f"consumer crashed: {app.consumer.crash_reason!r}")
    monitor = getattr(app, "lag_monitor", None)
    if monitor is not None and monitor.stalled:
        problems.append(f"stalled partitions: {'; '.join(monitor.stalled)}")
    for name, agent in app.agents.items():
        actors = list(agent._actors)
        if not actors:
            problems.append(f"agent {name!r} has no running task")
        for actor in actors:
            if actor.crashed or actor.should_stop:
                problems.append(f"agent {name!r} task exited: {actor.crash_reason!r}")
    return problems
