"""The worker's /metrics on a real broker: bounded per-agent series, lag, dashboard names."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.settings import GateSettings
from streams.topics import ADMIN_COMMANDS, ASSERTIONS
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import Agent, WorkerProcess, committed_offset, produce
from tests.monitoring import SCRAPE_SERIES, dashboard_exprs, exported_names, metric_names

pytestmark = pytest.mark.integration

TOP_AGENTS = 3
LAG_LINE = re.compile(r'^stemedb_consumer_lag\{partition="(\d+)",topic="([^"]+)"\} (\S+)$')


async def _metrics_text(worker: WorkerProcess) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(worker.base_url + "/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


def _series(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


async def _end_offsets(settings: GateSettings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _started_worker(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> tuple[GateSettings, WorkerProcess]:
    settings = await gate_settings_factory(
        worker={
            "metrics_top_agents": TOP_AGENTS,
            "lag_poll_interval_seconds": 1.0,
            "sweep_interval_seconds": 1.0,
        }
    )
    return settings, await worker_factory(settings)


async def test_per_agent_series_bounded(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """With 12 agents sending, each per-agent metric names 3 agents plus "other"."""
    settings, worker = await _started_worker(gate_settings_factory, worker_factory)
    agents = [Agent(f"a{i}") for i in range(12)]
    records = []
    for index, agent in enumerate(agents):
        # Agent i sends i + 1 records with a placeholder object, all LowQuality.
        records += [(agent.record_key, agent.encoded(object="n/a")) for _ in range(index + 1)]
    topic = settings.kafka.topic(ASSERTIONS)
    await produce(settings.kafka.bootstrap_servers, topic, records)

    deadline = time.monotonic() + 60.0
    while await worker.metric("stemedb_quarantine_rate_per_minute") < len(records):
        assert time.monotonic() < deadline, worker.log_tail()
        await asyncio.sleep(0.5)
    text = await _metrics_text(worker)

    for name in ("stemedb_quarantine_rate_per_agent", "stemedb_ingest_rate_per_agent"):
        series = _series(text, name)
        assert len(series) == TOP_AGENTS + 1, series
        named = {
            agent_id for line in series for agent_id in re.findall(r'agent_id="([^"]+)"', line)
        }
        top = {agent.agent_id for agent in agents[-TOP_AGENTS:]}
        assert named == top | {"other"}
        other = float(next(line for line in series if 'agent_id="other"' in line).split()[-1])
        assert other == sum(range(1, len(agents) - TOP_AGENTS + 1))


def _end_line(topic: str, partition: int, end: int) -> str:
    return f'stemedb_consumer_end_offset{{partition="{partition}",topic="{topic}"}} {float(end)}'


async def test_lag_matches_committed_offsets(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """Once the worker caught up, lag is 0 and the committed offsets equal the group's."""
    settings, worker = await _started_worker(gate_settings_factory, worker_factory)
    agent = Agent("lag")
    topic = settings.kafka.topic(ASSERTIONS)
    await produce(
        settings.kafka.bootstrap_servers,
        topic,
        [(agent.record_key, agent.encoded()) for _ in range(30)],
    )
    ends = await _end_offsets(settings, topic)

    deadline = time.monotonic() + 60.0
    while True:
        text = await _metrics_text(worker)
        lag = {
            (m.group(2), int(m.group(1))): float(m.group(3))
            for m in map(LAG_LINE.match, text.splitlines())
            if m
        }
        committed = {}
        for partition in range(settings.kafka.partitions):
            committed[partition] = await committed_offset(
                settings.kafka.bootstrap_servers, settings.kafka.app_id, topic, partition
            )
        caught_up = all(committed[p] == ends[p] for p in ends if ends[p] > 0)
        # A lag of 0 from a poll made before the records arrived is not enough: wait for
        # a poll that saw the new end offsets.
        polled_after = all(_end_line(topic, p, end) in text for p, end in ends.items())
        if caught_up and polled_after and lag and all(value == 0 for value in lag.values()):
            break
        assert time.monotonic() < deadline, f"lag {lag}, committed {committed}, end {ends}"
        await asyncio.sleep(0.5)

    partitions = set(range(settings.kafka.partitions))
    assert {p for t, p in lag if t == topic} == partitions
    assert {p for t, p in lag if t == settings.kafka.topic(ADMIN_COMMANDS)} == partitions
    for partition, end in ends.items():
        assert _end_line(topic, partition, end) in text
    assert await worker.metric("stemedb_consumer_lag_polls_total", {"result": "error"}) == 0


async def test_dashboard_names_live_metrics(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """Every metric a dashboard panel queries is on a running worker's /metrics."""
    _, worker = await _started_worker(gate_settings_factory, worker_factory)
    deadline = time.monotonic() + 30.0
    while await worker.metric("stemedb_consumer_lag_polls_total", {"result": "ok"}) < 1:
        assert time.monotonic() < deadline, worker.log_tail()
        await asyncio.sleep(0.5)
    exported = exported_names(await _metrics_text(worker)) | SCRAPE_SERIES
    for title, expr in dashboard_exprs():
        missing = metric_names(expr) - exported
        assert not missing, f"panel {title!r} queries {missing}, which the worker does not export"
