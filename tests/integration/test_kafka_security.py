"""The gate against a broker that requires SASL/SCRAM: logins, routing, the admin API, logs.

The module starts its own LocalBroker in SCRAM mode under a temporary folder on free
loopback ports, so it does not depend on the session's PLAINTEXT broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.errors import BrokerError
from streams.kafka_security import aiokafka_security_options
from streams.localbroker import DEFAULT_ROOT, KAFKA_VERSION, LocalBroker
from streams.settings import ENV_PREFIX, GateSettings, load_settings
from streams.topics import ACCEPTED, ASSERTIONS
from streams.topicsetup import ensure_topics
from tests.integration.harness import (
    AdminApiProcess,
    Agent,
    WorkerProcess,
    consume,
    free_port,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

USER = "gate-user"
PASSWORD = "scram-test-password-3f9c1e"
TOKEN = "scram-test-token-7a2b"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """Start a SCRAM-only broker in a temporary root and stop it by its PID at the end."""
    root = tmp_path_factory.mktemp("scram-kafka")
    # Share the jars of the default root, so Maven does not copy them again.
    shared_jars = DEFAULT_ROOT / KAFKA_VERSION
    if shared_jars.is_dir():
        (root / KAFKA_VERSION).symlink_to(shared_jars, target_is_directory=True)
    broker = LocalBroker(
        root, port=free_port(), controller_port=free_port(), scram_users={USER: PASSWORD}
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def scram_settings(
    scram_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GateSettings]:
    """Settings that log in with SCRAM-SHA-512; STEMEDB_ variables are ignored."""
    folder = tmp_path_factory.mktemp("scram-gate")
    config = folder / "config.toml"
    config.write_text("", encoding="utf-8")
    tokens = folder / "tokens"
    tokens.write_text(f"scram-operator {TOKEN}\n", encoding="utf-8")
    unique = uuid.uuid4().hex[:12]
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in list(os.environ):
            if name.upper().startswith(ENV_PREFIX):
                monkeypatch.delenv(name)
        yield load_settings(
            config,
            kafka={
                "bootstrap_servers": scram_broker.bootstrap_servers,
                "topic_prefix": f"scram-{unique}.",
                "app_id": f"scram-{unique}",
                "partitions": 2,
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": USER,
                "sasl_password": PASSWORD,
            },
            worker={"data_dir": folder / "worker", "web_port": free_port()},
            admin_api={
                "port": free_port(),
                "review_port": free_port(),
                "tokens_file": tokens,
                "command_timeout_seconds": 20,
            },
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    scram_settings: GateSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WorkerProcess, AdminApiProcess]]:
    """Create the topics over SCRAM, then start one worker and one admin API."""
    logs = tmp_path_factory.mktemp("scram-logs")
    await ensure_topics(scram_settings, timeout_seconds=60.0)
    worker = WorkerProcess(scram_settings, logs / "worker.log")
    api = AdminApiProcess(scram_settings, logs / "api.log")
    try:
        api.spawn()
        await asyncio.gather(worker.start(), api.wait_ready())
        yield worker, api
    finally:
        api.stop()
        worker.stop()


async def test_wrong_password_rejected(
    scram_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A producer with a wrong password cannot connect, and aiokafka logs why."""
    producer = AIOKafkaProducer(
        bootstrap_servers=scram_broker.bootstrap_servers,
        **scram_broker.client_security(USER, "not-the-password"),
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()

    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials" in caplog.text


async def test_plaintext_client_rejected(scram_broker: LocalBroker) -> None:
    """A client without SASL settings does not get through the SASL listener."""
    producer = AIOKafkaProducer(
        bootstrap_servers=scram_broker.bootstrap_servers, request_timeout_ms=3000
    )
    with pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()


async def test_topic_setup_wrong_password_names_settings(scram_settings: GateSettings) -> None:
    kafka = scram_settings.kafka.model_dump(exclude={"sasl_password"})
    wrong = load_settings(None, kafka={**kafka, "sasl_password": "not-the-password"})

    with pytest.raises(BrokerError) as caught:
        await ensure_topics(wrong, timeout_seconds=3.0)

    assert "kafka.sasl_*" in str(caught.value)
    assert "not-the-password" not in str(caught.value)


async def test_gate_over_scram_routes_and_serves(
    scram_settings: GateSettings, services: tuple[WorkerProcess, AdminApiProcess]
) -> None:
    """A signed assertion reaches ``accepted``, and an admin write is applied."""
    api = services[1]
    kafka = scram_settings.kafka
    security = aiokafka_security_options(kafka)
    agent = Agent("scram")
    record = agent.assertion()

    await produce(
        kafka.bootstrap_servers,
        kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(record))],
        **security,
    )
    accepted = await consume(
        kafka.bootstrap_servers,
        [kafka.topic(ACCEPTED)],
        until=lambda received: any(r.value["assertion"]["id"] == record["id"] for r in received),
        **security,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        path = f"{api.base_url}/v1/admin/circuit_breakers/{agent.agent_id}"
        async with session.post(
            f"{path}/open?wait=true",
            json={"reason": "flooding_quarantine", "duration_seconds": 60},
        ) as response:
            open_status = response.status
            opened: dict[str, Any] = await response.json()

    assert [r.value["assertion"]["id"] for r in accepted] == [record["id"]]
    assert accepted[0].headers["x-stemedb-route"] == "accepted"
    assert open_status == 200, opened
    assert opened["state"] == "OPEN"


async def test_logs_hold_no_password(
    services: tuple[WorkerProcess, AdminApiProcess], scram_broker: LocalBroker
) -> None:
    """Neither the worker's nor the admin API's output contains the SASL password."""
    worker, api = services
    worker_log = worker.log_path.read_text(errors="replace")
    api_log = api.log_path.read_text(errors="replace")
    broker_log = scram_broker.log_path.read_text(errors="replace")

    assert "security=SASL_PLAINTEXT" in worker_log
    assert PASSWORD not in worker_log
    assert PASSWORD not in api_log
    assert PASSWORD not in broker_log
