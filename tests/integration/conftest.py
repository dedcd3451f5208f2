"""Fixtures that run the real gate worker against the session's Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from streams.settings import GateSettings, load_settings
from streams.topicsetup import ensure_topics
from tests.integration.harness import WorkerProcess, free_port

GateFactory = Callable[..., Awaitable[GateSettings]]
WorkerFactory = Callable[[GateSettings], Awaitable[WorkerProcess]]


@pytest.fixture
async def gate_settings_factory(kafka_bootstrap: str, tmp_path: Path) -> GateFactory:
    """Make settings with uuid topic names, app id and data folder, with topics created."""

    async def make(**sections: dict[str, Any]) -> GateSettings:
        run = uuid.uuid4().hex[:10]
        merged: dict[str, dict[str, Any]] = {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "topic_prefix": f"test-{run}.",
                "app_id": f"gate-{run}",
                "partitions": 3,
            },
            "worker": {"data_dir": str(tmp_path / f"worker-{run}"), "web_port": free_port()},
        }
        for section, values in sections.items():
            merged.setdefault(section, {}).update(values)
        settings = load_settings(None, **merged)
        await ensure_topics(settings)
        return settings

    return make


@pytest.fixture
async def worker_factory(tmp_path: Path) -> AsyncIterator[WorkerFactory]:
    """Start workers for given settings; every worker still running is stopped at teardown."""
    started: list[WorkerProcess] = []

    async def start(settings: GateSettings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()
