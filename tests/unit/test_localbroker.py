"""LocalBroker checks that need no broker: Java and Maven discovery, ids, PID files."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from streams.errors import BrokerError
from streams.localbroker import LocalBroker, new_cluster_id, parse_java_major_version
from streams.settings import load_settings
from streams.topicsetup import ensure_topics, wait_for_broker


def _write_fake_java(bin_dir: Path, version_line: str) -> None:
    """Put a ``java`` on ``bin_dir`` that prints ``version_line`` like ``java -version``."""
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n", encoding="utf-8")
    java.chmod(java.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _write_fake_mvn(bin_dir: Path, calls_path: Path) -> None:
    """Put an ``mvn`` on ``bin_dir`` that records each call and creates an empty broker jar.

    It uses shell built-ins only, because PATH contains nothing but ``bin_dir``.
    """
    mvn = bin_dir / "mvn"
    mvn.write_text(
        "#!/bin/sh\n"
        f"echo call >> '{calls_path}'\n"
        'for arg in "$@"; do\n'
        '  case "$arg" in -Dkafka.libs.dir=*) libs="${arg#-Dkafka.libs.dir=}" ;; esac\n'
        "done\n"
        ': > "$libs/kafka_2.13-4.1.1.jar"\n',
        encoding="utf-8",
    )
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the whole PATH, with JAVA_HOME unset."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return folder


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ensure_installed_without_java_names_java(tmp_path: Path, bin_dir: Path) -> None:
    """No java on PATH: the error names java and the version the broker needs."""
    broker = LocalBroker(tmp_path / "kafka")

    with pytest.raises(BrokerError) as raised:
        broker.ensure_installed()

    assert "java not found on PATH" in str(raised.value)
    assert "Java 17 or newer" in str(raised.value)


def test_ensure_installed_with_old_java_names_version(tmp_path: Path, bin_dir: Path) -> None:
    """A Java 8 on PATH is rejected with the version found and the version needed."""
    _write_fake_java(bin_dir, 'openjdk version "1.8.0_392"')
    broker = LocalBroker(tmp_path / "kafka")

    with pytest.raises(BrokerError) as raised:
        broker.ensure_installed()

    assert "is Java 8" in str(raised.value)
    assert "needs Java 17 or newer" in str(raised.value)


def test_ensure_installed_without_maven_names_mvn(tmp_path: Path, bin_dir: Path) -> None:
    """Java 17 but no mvn, and no jars yet: the error names mvn."""
    _write_fake_java(bin_dir, 'openjdk version "17.0.15" 2025-04-15')
    broker = LocalBroker(tmp_path / "kafka")

    with pytest.raises(BrokerError) as raised:
        broker.ensure_installed()

    assert "mvn not found on PATH" in str(raised.value)
    assert not broker.libs_dir.exists()


def test_ensure_installed_redoes_partial_copy(tmp_path: Path, bin_dir: Path) -> None:
    """Jars without a stamp are a partial copy: emptied and copied again, then reused."""
    _write_fake_java(bin_dir, 'openjdk version "17.0.15" 2025-04-15')
    calls_path = tmp_path / "mvn-calls"
    _write_fake_mvn(bin_dir, calls_path)
    broker = LocalBroker(tmp_path / "kafka")
    broker.libs_dir.mkdir(parents=True)
    leftover = broker.libs_dir / "half-written.jar"
    leftover.write_bytes(b"partial")

    ran_maven = broker.ensure_installed()

    assert ran_maven is True
    assert not leftover.exists()
    assert (broker.libs_dir / "kafka_2.13-4.1.1.jar").is_file()
    assert broker.stamp_path.is_file()
    assert broker.ensure_installed() is False
    assert calls_path.read_text(encoding="utf-8").count("call") == 1


def test_start_broker_exit_shows_log_tail(tmp_path: Path, bin_dir: Path) -> None:
    """A broker JVM that exits at once fails the start with its exit code and output."""
    java = bin_dir / "java"
    java.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *-version*) echo 'openjdk version \"17.0.15\"' >&2 ;;\n"
        "  *kafka.Kafka*) echo 'fake broker: invalid config' ; exit 3 ;;\n"
        "esac\n",
        encoding="utf-8",
    )
    java.chmod(java.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    _write_fake_mvn(bin_dir, tmp_path / "mvn-calls")
    broker = LocalBroker(tmp_path / "kafka", port=_unused_port(), controller_port=_unused_port())

    with pytest.raises(BrokerError) as raised:
        broker.start(timeout_seconds=30.0)

    assert "exited with code 3" in str(raised.value)
    assert "fake broker: invalid config" in str(raised.value)
    assert not broker.pid_path.exists()
    assert broker.is_running() is False


def test_start_without_java_leaves_no_pid_file(tmp_path: Path, bin_dir: Path) -> None:
    """A start that fails before the launch writes no PID file and reports stopped."""
    broker = LocalBroker(tmp_path / "kafka")

    with pytest.raises(BrokerError, match="java not found"):
        broker.start(timeout_seconds=1.0)

    assert not broker.pid_path.exists()
    assert broker.status().state == "stopped"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "25-ea" 2025-09-16', 25),
        ("no version here", None),
    ],
)
def test_parse_java_major_version(output: str, major: int | None) -> None:
    assert parse_java_major_version(output) == major


def test_new_cluster_id_is_kafka_uuid_form() -> None:
    """22 URL-safe base64 characters (16 bytes), never starting with '-'."""
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22, cluster_id
        assert not cluster_id.startswith("-"), cluster_id
        assert set(cluster_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        ), cluster_id


def test_status_with_stale_pid_file_is_stopped(tmp_path: Path) -> None:
    """A PID file whose process is not this root's broker counts as stopped."""
    broker = LocalBroker(tmp_path / "kafka")
    broker.root.mkdir(parents=True)
    # PID 1 exists on every Unix machine and is never a Kafka broker of this root.
    broker.pid_path.write_text("1\n", encoding="utf-8")

    status = broker.status()

    assert status.running is False
    assert status.pid is None
    assert broker.is_running() is False


def test_stop_without_broker_returns_false(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka")
    broker.root.mkdir(parents=True)
    broker.pid_path.write_text("not a pid\n", encoding="utf-8")

    assert broker.stop(timeout_seconds=1.0) is False
    assert not broker.pid_path.exists()


def test_log_tail_without_log_says_missing(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka")

    assert "does not exist" in broker.log_tail()


async def test_wait_for_broker_unreachable_times_out() -> None:
    """Nothing listens on the port: BrokerError after the timeout, naming the address."""
    address = f"127.0.0.1:{_unused_port()}"

    with pytest.raises(BrokerError) as raised:
        await wait_for_broker(address, timeout_seconds=1.0)

    assert f"Kafka at {address} did not respond" in str(raised.value)
    assert "connection refused" in str(raised.value)


async def test_ensure_topics_unreachable_broker_raises(tmp_path: Path) -> None:
    """Topic setup against an address where nothing listens fails within its timeout."""
    empty_config = tmp_path / "empty.toml"
    empty_config.write_text("", encoding="utf-8")
    settings = load_settings(
        empty_config, kafka={"bootstrap_servers": f"127.0.0.1:{_unused_port()}"}
    )

    with pytest.raises(BrokerError, match="within 1 s"):
        await ensure_topics(settings, timeout_seconds=1.0)


def test_server_properties_default_plaintext(tmp_path: Path) -> None:
    properties = LocalBroker(tmp_path / "kafka")._server_properties()

    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in properties
    assert "inter.broker.listener.name=PLAINTEXT" in properties
    assert "sasl" not in properties


def test_server_properties_scram_mode(tmp_path: Path) -> None:
    """The client listener needs SCRAM, the controller stays PLAINTEXT, and user passwords
    stay out of the file."""
    broker = LocalBroker(tmp_path / "kafka", scram_users={"gate": "gate-password"})
    broker.root.mkdir(parents=True)

    properties = broker._server_properties()
    format_arguments = broker._scram_format_arguments()

    assert "listeners=SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in properties
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT," in properties
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in properties
    assert "gate-password" not in properties
    assert broker.inter_broker_password_path.stat().st_mode & 0o077 == 0
    assert "SCRAM-SHA-512=[name=gate,password=gate-password]" in format_arguments


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        ({"gate": "pass word"}, "may contain only letters"),
        ({"a=b": "password"}, "may contain only letters"),
        ({"stemedb-inter-broker": "password"}, "reserved for the broker"),
    ],
)
def test_scram_users_invalid_rejected(tmp_path: Path, users: dict[str, str], expected: str) -> None:
    with pytest.raises(BrokerError, match=expected):
        LocalBroker(tmp_path / "kafka", scram_users=users)
