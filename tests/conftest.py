"""Fixtures shared by all tests: one Kafka broker per session, settings and topics per test.

``kafka_bootstrap`` picks the broker in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS``, when it is set;
2. a Kafka container (testcontainers), when a Docker engine responds;
3. the local broker of :mod:`streams.localbroker`, which the session starts when it
   is not running. The last test session to finish stops it again, unless it was
   running before any test session started it.

Tests stay apart on a shared broker because every ``settings_factory`` call makes a
new uuid topic prefix and app id.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_security import aiokafka_security_options
from streams.localbroker import KAFKA_VERSION, LocalBroker
from streams.settings import ENV_PREFIX, GateSettings, load_settings
from streams.topics import topic_specs
from streams.topicsetup import TopicReport, admin_client, ensure_topics

logger = logging.getLogger(__name__)

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
DOCKER_PING_TIMEOUT_SECONDS = 3
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
BROKER_START_TIMEOUT_SECONDS = 180.0

SettingsFactory = Callable[..., GateSettings]
TopicsFactory = Callable[[GateSettings], Awaitable[TopicReport]]


@dataclass(frozen=True)
class BrokerChoice:
    """Which Kafka the session uses: ``env``, ``docker`` or ``local``."""

    kind: str
    description: str


_choice: BrokerChoice | None = None


def _docker_engine_responds() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path(DEFAULT_DOCKER_SOCKET).exists():
        return False
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return False
    # docker-py leaves its socket unclosed when the engine does not respond, and the
    # ResourceWarning would fail whichever test runs when it is collected. The gc run
    # inside the filter makes that happen here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_SECONDS)
            try:
                return bool(client.ping())
            finally:
                client.close()
        # Without an engine docker-py raises DockerException, or an OSError subclass
        # from requests or the socket, depending on the transport.
        except (DockerException, OSError):
            return False
        finally:
            gc.collect()


def choose_broker() -> BrokerChoice:
    """Decide once per session which Kafka the integration tests use."""
    global _choice
    if _choice is not None:
        return _choice
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if bootstrap:
        _choice = BrokerChoice("env", f"{bootstrap} from {BOOTSTRAP_ENV}")
    elif _docker_engine_responds():
        _choice = BrokerChoice("docker", f"{KAFKA_IMAGE} container through testcontainers")
    else:
        broker = LocalBroker()
        _choice = BrokerChoice(
            "local", f"local broker {KAFKA_VERSION} at {broker.bootstrap_servers} ({broker.root})"
        )
    logger.info("Kafka for integration tests: %s", _choice.description)
    return _choice


def pytest_report_header(config: pytest.Config) -> str:
    return f"kafka: {choose_broker().description}"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's Kafka broker."""
    choice = choose_broker()
    if choice.kind == "env":
        yield os.environ[BOOTSTRAP_ENV]
    elif choice.kind == "docker":
        yield from _kafka_container()
    else:
        yield from _local_broker()


def _local_broker() -> Iterator[str]:
    # Each session that uses the broker leaves a file named by its PID, and a session
    # that starts the broker writes the broker's PID to STARTED_BY_TESTS. The last
    # session to finish stops the broker if that PID is the running one, so overlapping
    # sessions do not stop it under each other, and a broker started in another way
    # (stemedb-gate broker start) keeps running.
    broker = LocalBroker()
    sessions_dir = broker.root / "test-sessions"
    sessions_dir.mkdir(parents=True, exist_ok=True)
    started_marker = sessions_dir / "STARTED_BY_TESTS"
    started_here = not broker.is_running()
    status = broker.start(timeout_seconds=BROKER_START_TIMEOUT_SECONDS)
    if started_here:
        started_marker.write_text(f"{status.pid}\n", encoding="utf-8")
    session_file = sessions_dir / str(os.getpid())
    session_file.touch()
    try:
        yield broker.bootstrap_servers
    finally:
        session_file.unlink(missing_ok=True)
        others = _other_live_sessions(sessions_dir)
        if others:
            logger.info("Leaving the local broker running for pytest sessions %s", others)
        elif _read_text(started_marker) == str(broker.status().pid):
            broker.stop()
            started_marker.unlink(missing_ok=True)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _other_live_sessions(sessions_dir: Path) -> list[int]:
    """Return the PIDs of other sessions using the broker, removing files of dead ones."""
    live: list[int] = []
    for path in sessions_dir.iterdir():
        if not path.name.isdigit():
            continue
        try:
            pid = int(path.name)
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass  # The process exists but belongs to another user.
        live.append(pid)
    return live


def _kafka_container() -> Iterator[str]:
    # testcontainers' KafkaContainer runs the start scripts of Confluent's images, which
    # apache/kafka does not have, so the container is configured here. The advertised
    # listener must name the port that clients connect to, so a free host port is
    # chosen before the start instead of letting Docker pick one.
    # NOTE: this path has not run on a machine with a Docker engine yet.
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    host_port = _free_local_port()
    container = DockerContainer(KAFKA_IMAGE).with_envs(
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{host_port}",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
    )
    # with_bind_ports takes no host address, and docker-py accepts an (address, port)
    # pair, which keeps the port on the loopback interface.
    container.ports["9092/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]
    container.waiting_for(
        LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(
            int(BROKER_START_TIMEOUT_SECONDS)
        )
    )
    with container:
        yield f"127.0.0.1:{host_port}"


def _free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings_factory(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SettingsFactory:
    """Return a function that makes settings for one test on the session's broker.

    Each call gets a new uuid topic prefix and app id and its own worker data folder.
    Keyword arguments are sections (``kafka={"partitions": 2}``), and their keys win
    over those defaults. ``STEMEDB_`` variables and /etc/stemedb/config.toml are
    ignored, so a developer's own configuration does not leak into tests.
    """
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    empty_config = tmp_path / "empty-config.toml"
    empty_config.write_text("", encoding="utf-8")

    def make_settings(**section_overrides: dict[str, Any]) -> GateSettings:
        unique = uuid.uuid4().hex[:12]
        kafka = {
            "bootstrap_servers": kafka_bootstrap,
            "topic_prefix": f"test-{unique}.",
            "app_id": f"test-{unique}",
            **section_overrides.pop("kafka", {}),
        }
        worker = {"data_dir": tmp_path / f"worker-{unique}", **section_overrides.pop("worker", {})}
        return load_settings(empty_config, kafka=kafka, worker=worker, **section_overrides)

    return make_settings


@pytest.fixture
async def topics_factory() -> AsyncIterator[TopicsFactory]:
    """Return an async function that runs ``ensure_topics`` for some settings.

    The topics of those settings are deleted after the test, so the local broker,
    whose data outlives the session, does not collect topics from every run.
    """
    used_settings: list[GateSettings] = []

    async def make_topics(settings: GateSettings) -> TopicReport:
        used_settings.append(settings)
        return await ensure_topics(settings, timeout_seconds=60.0)

    yield make_topics

    for settings in used_settings:
        names = [spec.name for spec in topic_specs(settings)]
        async with admin_client(
            settings.kafka.bootstrap_servers, security=aiokafka_security_options(settings.kafka)
        ) as client:
            existing = set(await client.list_topics())
            to_delete = [name for name in names if name in existing]
            if to_delete:
                await client.delete_topics(to_delete)
