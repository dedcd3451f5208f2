"""Fixtures that run the real gate worker against the session's Kafka broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_security import aiokafka_security_options
from streams.settings import GateSettings
from streams.topicsetup import admin_client
from tests.integration.harness import WorkerProcess, free_port

GateFactory = Callable[..., Awaitable[GateSettings]]
WorkerFactory = Callable[[GateSettings], Awaitable[WorkerProcess]]


@pytest.fixture
async def gate_settings_factory(
    settings_factory: Callable[..., GateSettings],
    topics_factory: Callable[[GateSettings], Awaitable[Any]],
) -> AsyncIterator[GateFactory]:
    """Make settings with uuid topic names, app id and data folder, with topics created.

    The gate's topics are deleted by ``topics_factory``; the changelog and assignor
    topics that faust creates under the app id are deleted here.
    """
    created: list[GateSettings] = []

    async def make(**sections: dict[str, Any]) -> GateSettings:
        kafka = {"partitions": 3, **sections.pop("kafka", {})}
        worker = {"web_port": free_port(), **sections.pop("worker", {})}
        settings = settings_factory(kafka=kafka, worker=worker, **sections)
        await topics_factory(settings)
        created.append(settings)
        return settings

    yield make

    for settings in created:
        async with admin_client(
            settings.kafka.bootstrap_servers, security=aiokafka_security_options(settings.kafka)
        ) as client:
            internal = [
                name
                for name in await client.list_topics()
                if name.startswith(f"{settings.kafka.app_id}-")
            ]
            if internal:
                await client.delete_topics(internal)


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
