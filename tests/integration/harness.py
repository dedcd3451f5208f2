"""Helpers for tests that run the real worker process against a real broker."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.signing import sign
from streams.settings import GateSettings, settings_environment

READY_TIMEOUT_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: GateSettings) -> dict[str, str]:
    """Return the ``STEMEDB_<SECTION>__<KEY>`` variables that reproduce ``settings``."""
    return settings_environment(settings)


@dataclass
class Agent:
    """A test agent with its own Ed25519 key, writing signed assertions."""

    label: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    sent: int = 0

    @property
    def agent_id(self) -> str:
        return sign({}, self.key)["agent_id"]

    @property
    def record_key(self) -> bytes:
        return self.agent_id.encode()

    def assertion(self, **overrides: Any) -> dict[str, Any]:
        self.sent += 1
        fields: dict[str, Any] = {
            "schema_version": 1,
            "id": f"{self.label}-{self.sent}",
            "subject": f"Town {self.label} {self.sent}",
            "predicate": "located_in",
            "object": "Portugal",
            "confidence": 0.7,
            "sources": ["https://www.geonames.org/2264397"],
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        fields.update(overrides)
        return sign(fields, self.key)

    def encoded(self, **overrides: Any) -> bytes:
        return orjson.dumps(self.assertion(**overrides))


class ServiceProcess:
    """A ``stemedb-gate`` subcommand in a child process, started and stopped by its PID.

    Subclasses name the subcommand and the port whose ``/readyz`` tells that the
    process is ready.
    """

    subcommand = ""

    def __init__(self, settings: GateSettings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.spawn()
        await self.wait_ready()

    def spawn(self) -> None:
        """Start the child process without waiting for it to be ready."""
        env = {**os.environ, **settings_env(self.settings)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", self.subcommand],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout_seconds
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"{self.subcommand} exited with {self.process.returncode}:\n"
                        f"{self.log_tail()}"
                    )
                try:
                    async with session.get(f"{self.base_url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.3)
        raise AssertionError(
            f"{self.subcommand} not ready after {timeout_seconds}s:\n{self.log_tail()}"
        )

    def stop(self, timeout_seconds: float = 30.0) -> int:
        """Send SIGTERM and wait; SIGKILL if the process does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def kill(self) -> None:
        """Send SIGKILL, as a crash would end the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class AdminApiProcess(ServiceProcess):
    """``stemedb-gate admin-api``; ready when its read model has caught up."""

    subcommand = "admin-api"

    @property
    def port(self) -> int:
        return self.settings.admin_api.port


class WorkerProcess(ServiceProcess):
    """The gate worker; ready when its tables are restored and its tasks run."""

    subcommand = "worker"

    @property
    def port(self) -> int:
        return self.settings.worker.web_port

    async def get_json(self, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + path) as resp:
            return await resp.json()

    async def get_status(self, path: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + path) as resp:
            return resp.status

    async def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base_url + "/metrics") as resp,
        ):
            text = await resp.text()
        wanted = ",".join(f'{k}="{v}"' for k, v in (labels or {}).items())
        series = f"{name}{{{wanted}}}" if wanted else name
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    async def agent_state(self, agent_id: str) -> dict[str, Any] | None:
        body = await self.get_json(f"/state/agents/{agent_id}")
        return body["state"] if body["known"] else None


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    **client_options: Any,
) -> list[tuple[int, int]]:
    """Send records in order and return each one's (partition, offset).

    ``client_options`` go to the producer, for example SASL credentials.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_options)
    await producer.start()
    try:
        placed = []
        for key, value in records:
            meta = await producer.send_and_wait(topic, value=value, key=key)
            placed.append((meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


@dataclass
class Received:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    headers: dict[str, str]


async def consume(
    bootstrap: str,
    topics: list[str],
    *,
    until: Any = None,
    timeout_seconds: float = 30.0,
    settle_seconds: float = 0.0,
    **client_options: Any,
) -> list[Received]:
    """Read ``topics`` from the beginning until ``until(received)`` is true or time runs out.

    ``settle_seconds`` keeps reading that long after the condition holds, to catch
    records that should not be there. ``client_options`` go to the consumer.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
        **client_options,
    )
    await consumer.start()
    received: list[Received] = []
    try:
        deadline = time.monotonic() + timeout_seconds
        settle_deadline: float | None = None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for m in messages:
                    value = orjson.loads(m.value) if m.value is not None else None
                    headers = {k: v.decode() for k, v in (m.headers or ())}
                    received.append(
                        Received(tp.topic, tp.partition, m.offset, m.key, value, headers)
                    )
            if until is not None and until(received):
                if settle_deadline is None:
                    settle_deadline = time.monotonic() + settle_seconds
                if time.monotonic() >= settle_deadline:
                    break
        return received
    finally:
        await consumer.stop()


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, partition))
    return meta.offset if meta is not None else -1


async def wait_committed(
    bootstrap: str,
    group: str,
    topic: str,
    partition: int,
    at_least: int,
    timeout_seconds: float = 30.0,
) -> int:
    deadline = time.monotonic() + timeout_seconds
    offset = -1
    while time.monotonic() < deadline:
        offset = await committed_offset(bootstrap, group, topic, partition)
        if offset >= at_least:
            return offset
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic}[{partition}] committed offset {offset}, expected >= {at_least}")


def original_bytes(invalid_record: dict[str, Any]) -> bytes:
    return base64.b64decode(invalid_record["original_base64"])
