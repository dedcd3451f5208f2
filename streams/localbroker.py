"""A single-node Apache Kafka broker (KRaft mode) for tests and local runs.

Maven copies the broker's jars from Maven Central as ``broker/pom.xml`` lists them,
and the machine's Java (17 or newer, which Kafka 4 requires) runs ``kafka.Kafka`` as a
detached process, so the broker outlives the command that started it. It listens on
127.0.0.1 only. Everything it writes lives under one root folder::

    <root>/<version>/libs/         jars copied by Maven
    <root>/<version>/libs.stamp    written once the copy is complete
    <root>/server.properties       broker config, rewritten on every start
    <root>/log4j2.properties       logging config, rewritten on every start
    <root>/data/                   topic data and KRaft metadata
    <root>/broker.pid              PID of the running broker
    <root>/broker.log              broker output (stdout and stderr)

A broker that already runs from the same root is reused, so tests, ``stemedb-gate
broker start`` and a worker can share one.

With ``scram_users`` the client listener is SASL_PLAINTEXT with SCRAM-SHA-512 instead
of PLAINTEXT. The users are stored when the storage is formatted, together with an
inter-broker user whose password is generated then and kept in
``<root>/inter-broker.password``. The controller listener stays PLAINTEXT on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.errors import BrokerError
from streams.topicsetup import wait_for_broker

logger = logging.getLogger(__name__)

# Keep equal to kafka.version in broker/pom.xml and the image tag in docker-compose.yml.
KAFKA_VERSION = "4.1.1"
HOST = "127.0.0.1"
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
MIN_JAVA_MAJOR = 17
NODE_ID = 1

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / ".cache" / "kafka"
DEFAULT_POM_PATH = REPO_ROOT / "broker" / "pom.xml"

LOG_TAIL_LINES = 40
# broker.log is renamed to broker.log.1 at start once it is larger than this.
MAX_LOG_BYTES = 20 * 1024 * 1024
POLL_INTERVAL_SECONDS = 0.2
# Each readiness probe is short, so a broker that exits during start is noticed soon.
PROBE_TIMEOUT_SECONDS = 2.0
SCRAM_MECHANISM = "SCRAM-SHA-512"
# The user the broker authenticates as on its own listener: transaction markers, for
# example, go over the inter-broker listener even on a single node.
INTER_BROKER_USER = "stemedb-inter-broker"
# SCRAM user names and passwords go into the StorageTool argument
# "SCRAM-SHA-512=[name=...,password=...]", so characters that need quoting there are
# rejected.
_SCRAM_TEXT = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class BrokerStatus:
    """State of the local broker as ``stemedb-gate broker status`` prints it."""

    running: bool
    pid: int | None
    bootstrap_servers: str
    log_path: Path
    root: Path

    @property
    def state(self) -> str:
        return "running" if self.running else "stopped"


class LocalBroker:
    """Installs, starts, reuses and stops one single-node Kafka broker under ``root``."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_CONTROLLER_PORT,
        version: str = KAFKA_VERSION,
        heap_megabytes: int = 512,
        pom_path: Path = DEFAULT_POM_PATH,
        scram_users: Mapping[str, str] | None = None,
    ) -> None:
        """Describe a broker under ``root``; nothing starts until :meth:`start`.

        ``scram_users`` maps user names to passwords and turns on SCRAM mode. Users
        are added only when the storage is formatted, on the first start of a root.
        """
        for name, password in (scram_users or {}).items():
            if not _SCRAM_TEXT.match(name) or not _SCRAM_TEXT.match(password):
                raise BrokerError(
                    f"SCRAM user {name!r}: names and passwords may contain only letters, "
                    "digits, '.', '_' and '-'"
                )
            if name == INTER_BROKER_USER:
                raise BrokerError(f"SCRAM user name {name!r} is reserved for the broker")
        self.scram_users = dict(scram_users or {})
        self.root = (root or DEFAULT_ROOT).resolve()
        self.port = port
        self.controller_port = controller_port
        self.version = version
        self.heap_megabytes = heap_megabytes
        self.pom_path = pom_path
        # Brokers that this process spawned, and the exit codes of those it reaped.
        self._spawned_pids: set[int] = set()
        self._exit_codes: dict[int, int] = {}

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.root / self.version / "libs"

    @property
    def stamp_path(self) -> Path:
        return self.root / self.version / "libs.stamp"

    @property
    def config_path(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_config_path(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pid_path(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "broker.log"

    @property
    def inter_broker_password_path(self) -> Path:
        return self.root / "inter-broker.password"

    @property
    def security_protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.scram_users else "PLAINTEXT"

    def client_security(self, user: str, password: str) -> dict[str, Any]:
        """Return aiokafka keyword arguments that log in as ``user`` in SCRAM mode."""
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }

    # ----------------------------------------------------------------- install

    def ensure_installed(self, timeout_seconds: float = 900.0) -> bool:
        """Check Java and copy the Kafka jars with Maven unless a complete copy exists.

        Returns True when Maven ran. Raises :class:`BrokerError` when ``java`` is missing
        or older than 17, when ``mvn`` is missing and the jars are needed, or when Maven
        fails or runs longer than ``timeout_seconds``.
        """
        find_java()
        if self._libs_complete():
            return False

        mvn = find_maven()
        logger.info(
            "Copying the jars of Kafka %s from Maven Central into %s", self.version, self.libs_dir
        )
        # A folder without a matching stamp may hold a partial copy or jars of another
        # pom, so it is emptied before Maven fills it again.
        self.stamp_path.unlink(missing_ok=True)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        self.libs_dir.mkdir(parents=True)
        command = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(self.pom_path),
            "dependency:copy-dependencies",
            f"-Dkafka.version={self.version}",
            f"-Dkafka.libs.dir={self.libs_dir}",
        ]
        started = time.monotonic()
        output = _run(command, timeout_seconds, description="Maven copy of the Kafka jars")
        if not self._broker_jar().is_file():
            raise BrokerError(
                f"Maven finished but {self._broker_jar()} is missing; output:\n{output}"
            )

        self.stamp_path.write_text(self._stamp_text(), encoding="utf-8")
        logger.info(
            "Copied %d jars of Kafka %s in %.1f s",
            len(list(self.libs_dir.glob("*.jar"))),
            self.version,
            time.monotonic() - started,
        )
        return True

    def _broker_jar(self) -> Path:
        return self.libs_dir / f"kafka_2.13-{self.version}.jar"

    def _stamp_text(self) -> str:
        if not self.pom_path.is_file():
            raise BrokerError(
                f"Maven project {self.pom_path} not found; the local broker needs the "
                "repository's broker/pom.xml"
            )
        digest = hashlib.sha256(self.pom_path.read_bytes()).hexdigest()
        return f"kafka {self.version}\npom sha256 {digest}\n"

    def _libs_complete(self) -> bool:
        try:
            stamp = self.stamp_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        return stamp == self._stamp_text() and self._broker_jar().is_file()

    # ------------------------------------------------------------ start, stop

    def start(self, timeout_seconds: float = 120.0) -> BrokerStatus:
        """Start the broker, or reuse the one running from this root, and wait until it responds.

        ``timeout_seconds`` bounds the wait for the broker's first metadata response,
        not the Maven copy. Raises :class:`BrokerError` with the tail of the broker log
        when the process exits or does not respond in time, in which case a process
        started by this call is stopped again. This method is synchronous and must not
        run inside an event loop.
        """
        running_pid = self._running_pid()
        if running_pid is not None:
            logger.info(
                "Reusing the Kafka broker (pid %d) already running from %s", running_pid, self.root
            )
            self._wait_until_ready(running_pid, timeout_seconds)
            return self.status()

        # 1. Jars and Java.
        self.ensure_installed()
        java = find_java()

        # 2. Ports, config files and the one-time storage format.
        for port in (self.port, self.controller_port):
            if _port_accepts_connections(port):
                raise BrokerError(
                    f"port {port} on {HOST} is already in use by a process that is not the "
                    f"broker of {self.root}; stop that process, or use another port"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._server_properties(), encoding="utf-8")
        self.config_path.chmod(0o600)
        self.log4j_config_path.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        self._format_storage_once(java)

        # 3. Launch and wait for the first metadata response.
        pid = self._spawn(java)
        try:
            self._wait_until_ready(pid, timeout_seconds)
        except BrokerError:
            self._terminate(pid, timeout_seconds=10.0)
            self.pid_path.unlink(missing_ok=True)
            raise
        logger.info("Kafka broker (pid %d) is ready at %s", pid, self.bootstrap_servers)
        return self.status()

    def stop(self, timeout_seconds: float = 30.0) -> bool:
        """Stop the broker with SIGTERM, and SIGKILL once ``timeout_seconds`` have passed.

        Returns False when no broker was running from this root. Removes the PID file.
        """
        pid = self._running_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            logger.info("No Kafka broker is running from %s", self.root)
            return False
        logger.info("Stopping the Kafka broker (pid %d)", pid)
        self._terminate(pid, timeout_seconds)
        self.pid_path.unlink(missing_ok=True)
        logger.info("Stopped the Kafka broker (pid %d)", pid)
        return True

    def status(self) -> BrokerStatus:
        pid = self._running_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap_servers=self.bootstrap_servers,
            log_path=self.log_path,
            root=self.root,
        )

    def is_running(self) -> bool:
        return self._running_pid() is not None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the broker log, or a note that there is none."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return f"({self.log_path} does not exist)"
        return "\n".join(text.splitlines()[-lines:])

    # --------------------------------------------------------------- helpers

    def _server_properties(self) -> str:
        properties = _SERVER_PROPERTIES.format(
            node_id=NODE_ID,
            host=HOST,
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
            listener=self.security_protocol,
        )
        if self.scram_users:
            properties += _SCRAM_PROPERTIES.format(
                mechanism=SCRAM_MECHANISM,
                jaas_key=f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}",
                user=INTER_BROKER_USER,
                password=self._inter_broker_password(),
            )
        return properties

    def _inter_broker_password(self) -> str:
        """Read the inter-broker password, creating it before the storage is formatted."""
        try:
            return self.inter_broker_password_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        if (self.data_dir / "meta.properties").is_file():
            raise BrokerError(
                f"{self.data_dir} was formatted without SCRAM users, so this broker cannot "
                f"run in SCRAM mode; use another root or delete {self.data_dir}"
            )
        password = secrets.token_urlsafe(24)
        self.inter_broker_password_path.touch(mode=0o600)
        self.inter_broker_password_path.write_text(password + "\n", encoding="utf-8")
        return password

    def _probe_security(self) -> dict[str, Any] | None:
        if not self.scram_users:
            return None
        return self.client_security(INTER_BROKER_USER, self._inter_broker_password())

    def _scram_format_arguments(self) -> list[str]:
        users = {**self.scram_users, INTER_BROKER_USER: self._inter_broker_password()}
        arguments: list[str] = []
        for name, password in users.items():
            arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
        return arguments

    def _format_storage_once(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id = new_cluster_id()
        logger.info("Formatting Kafka storage in %s with cluster id %s", self.data_dir, cluster_id)
        _run(
            [
                java,
                f"-Dlog4j2.configurationFile={self.log4j_config_path}",
                "-cp",
                str(self.libs_dir / "*"),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_path),
                # NOTE: the passwords are visible to other local users in the process
                # list while the format runs, which is acceptable for a test broker only.
                *(self._scram_format_arguments() if self.scram_users else []),
            ],
            timeout_seconds=120.0,
            description="Kafka storage format",
        )

    def _spawn(self, java: str) -> int:
        self._rotate_log()
        argv = [
            java,
            f"-Xmx{self.heap_megabytes}m",
            "-XX:+ExitOnOutOfMemoryError",
            f"-XX:ErrorFile={self.root / 'hs_err_pid%p.log'}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_config_path}",
            "-cp",
            str(self.libs_dir / "*"),
            "kafka.Kafka",
            str(self.config_path),
        ]
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- stemedb-gate starts Kafka {self.version} at {datetime.now(UTC)}\n")
        # posix_spawn with setsid detaches the broker into its own session, so it keeps
        # running after this process exits and a Ctrl-C in the terminal does not reach it.
        pid = os.posix_spawn(
            java,
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (
                    os.POSIX_SPAWN_OPEN,
                    1,
                    str(self.log_path),
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                    0o644,
                ),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )
        self._spawned_pids.add(pid)
        self.pid_path.write_text(f"{pid}\n", encoding="utf-8")
        logger.info(
            "Started the Kafka %s broker (pid %d), logging to %s", self.version, pid, self.log_path
        )
        return pid

    def _rotate_log(self) -> None:
        try:
            if self.log_path.stat().st_size > MAX_LOG_BYTES:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        except FileNotFoundError:
            pass

    def _wait_until_ready(self, pid: int, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if not self._is_alive(pid):
                exit_code = self._exit_codes.get(pid)
                exit_description = (
                    "exited" if exit_code is None else f"exited with code {exit_code}"
                )
                raise BrokerError(
                    f"Kafka broker (pid {pid}) {exit_description} before it responded to a "
                    f"metadata request; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            remaining_seconds = deadline - time.monotonic()
            if remaining_seconds <= 0:
                raise BrokerError(
                    f"Kafka broker (pid {pid}) did not respond at {self.bootstrap_servers} "
                    f"within {timeout_seconds:g} s; last lines of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            try:
                asyncio.run(
                    wait_for_broker(
                        self.bootstrap_servers,
                        min(PROBE_TIMEOUT_SECONDS, remaining_seconds),
                        security=self._probe_security(),
                    )
                )
                return
            except BrokerError:
                continue

    def _terminate(self, pid: int, timeout_seconds: float) -> None:
        _signal(pid, signal.SIGTERM)
        if self._wait_for_exit(pid, timeout_seconds):
            return
        logger.warning(
            "Kafka broker (pid %d) still runs %g s after SIGTERM; sending SIGKILL",
            pid,
            timeout_seconds,
        )
        _signal(pid, signal.SIGKILL)
        if not self._wait_for_exit(pid, 10.0):
            raise BrokerError(f"Kafka broker (pid {pid}) still runs 10 s after SIGKILL")

    def _wait_for_exit(self, pid: int, timeout_seconds: float) -> bool:
        deadline = time.monotonic() + timeout_seconds
        while self._is_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_SECONDS)
        return True

    def _read_pid(self) -> int | None:
        try:
            text = self.pid_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        try:
            return int(text)
        except ValueError:
            logger.warning("Ignoring PID file %s with invalid content %r", self.pid_path, text)
            return None

    def _running_pid(self) -> int | None:
        pid = self._read_pid()
        if pid is None or not self._is_alive(pid):
            return None
        return pid

    def _is_alive(self, pid: int) -> bool:
        """Check that ``pid`` runs and is this root's broker, not a process that reused the PID."""
        # A broker that this process spawned stays a zombie until it is reaped, and a
        # zombie still accepts signals, so reap it first.
        try:
            reaped_pid, wait_status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            reaped_pid = 0
        if reaped_pid == pid:
            self._exit_codes[pid] = os.waitstatus_to_exitcode(wait_status)
        if pid in self._exit_codes:
            return False
        if pid in self._spawned_pids:
            # Right after the spawn /proc can still show this interpreter's command line
            # instead of java's. The waitpid call above has already checked the child.
            return True

        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # The PID exists but belongs to another user, so /proc decides.
        return self._is_own_broker_process(pid)

    def _is_own_broker_process(self, pid: int) -> bool:
        proc = Path("/proc")
        if not proc.is_dir():
            # NOTE: without /proc (macOS) a PID that another program reused after the
            # broker died counts as the running broker.
            return True
        try:
            stat = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
            cmdline = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return False
        # The state letter follows the parenthesised command name, and Z is a zombie.
        if stat.rpartition(")")[2].split()[:1] == ["Z"]:
            return False
        arguments = [part.decode("utf-8", errors="replace") for part in cmdline]
        return "kafka.Kafka" in arguments and str(self.config_path) in arguments


def find_java() -> str:
    """Return the path of ``java`` (``$JAVA_HOME/bin/java`` first), checking it is 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java: str | None = None
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        java = str(Path(java_home) / "bin" / "java")
    else:
        java = shutil.which("java")
    if java is None:
        raise BrokerError(
            f"java not found on PATH; the local Kafka broker needs Java {MIN_JAVA_MAJOR} or "
            "newer (Debian: apt-get install openjdk-17-jre-headless), or set "
            "KAFKA_BOOTSTRAP_SERVERS to use another broker"
        )

    output = _run([java, "-version"], timeout_seconds=30.0, description="java -version")
    major = parse_java_major_version(output)
    if major is None:
        raise BrokerError(f"could not read the Java version from {java} -version: {output!r}")
    if major < MIN_JAVA_MAJOR:
        raise BrokerError(
            f"{java} is Java {major}, but Kafka {KAFKA_VERSION} needs Java {MIN_JAVA_MAJOR} "
            "or newer; install a newer JDK and put it first on PATH or in JAVA_HOME"
        )
    return java


def find_maven() -> str:
    """Return the path of ``mvn``, which copies the Kafka jars from Maven Central."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "mvn not found on PATH; the local Kafka broker needs Maven once to copy the "
            "Kafka jars (Debian: apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS to "
            "use another broker"
        )
    return mvn


def parse_java_major_version(version_output: str) -> int | None:
    """Return the major Java version from ``java -version`` output ("1.8.0_x" is 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def new_cluster_id() -> str:
    """Return a random Kafka cluster id: 16 bytes in URL-safe base64 without padding.

    This is the form ``kafka-storage.sh random-uuid`` prints. Like ``Uuid.randomUuid``
    in Kafka 4.1.1, it skips ids that start with "-", which a command line would read
    as an option.
    """
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not encoded.startswith("-"):
            return encoded


def _run(command: list[str], timeout_seconds: float, *, description: str) -> str:
    """Run ``command`` and return its combined output, raising BrokerError on failure."""
    try:
        completed = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BrokerError(f"{description} timed out after {timeout_seconds:g} s") from None
    except OSError as exc:
        raise BrokerError(f"{description} could not run {command[0]}: {exc}") from exc
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-LOG_TAIL_LINES:])
        raise BrokerError(f"{description} failed with exit code {completed.returncode}:\n{tail}")
    logger.debug("%s output:\n%s", description, completed.stdout)
    return completed.stdout


def _port_accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


_SERVER_PROPERTIES = """\
# stemedb-gate (streams/localbroker.py) rewrites this file on every start.
# One process is both the KRaft controller and the broker.
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={node_id}@{host}:{controller_port}
controller.listener.names=CONTROLLER
listeners={listener}://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners={listener}://{host}:{port}
inter.broker.listener.name={listener}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}
log.dirs={data_dir}

# A single node cannot hold more than one replica of the internal topics.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Consumer groups start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Tests delete their topics. Removing the files after 1 s instead of 60 s keeps them
# from piling up in the data folder when the broker stops soon after.
file.delete.delay.ms=1000
"""

_SCRAM_PROPERTIES = """
# SCRAM mode: clients and the broker itself log in on the SASL_PLAINTEXT listener.
sasl.enabled.mechanisms={mechanism}
sasl.mechanism.inter.broker.protocol={mechanism}
{jaas_key}.sasl.jaas.config=\\
  org.apache.kafka.common.security.scram.ScramLoginModule required \\
  username="{user}" password="{password}";
"""

_LOG4J2_PROPERTIES = """\
# stemedb-gate (streams/localbroker.py) rewrites this file on every start.
# The broker logs to stdout, which the launcher appends to broker.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT

# These write INFO lines for every partition that is created, loaded or deleted, which
# fill megabytes per test run.
logger.replication.name = org.apache.kafka.controller.ReplicationControlManager
logger.replication.level = WARN
logger.partition_change.name = org.apache.kafka.controller.PartitionChangeBuilder
logger.partition_change.level = WARN
logger.topic_configs.name = org.apache.kafka.controller.ConfigurationControlManager
logger.topic_configs.level = WARN
logger.dynamic_configs.name = kafka.server.metadata.DynamicConfigPublisher
logger.dynamic_configs.level = WARN
logger.log_manager.name = kafka.log.LogManager
logger.log_manager.level = WARN
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = WARN
logger.partition.name = kafka.cluster.Partition
logger.partition.level = WARN
logger.state_change.name = state.change.logger
logger.state_change.level = WARN
"""
