"""Create the gate's topics and check that topics which already exist match them.

The gate relies on topic settings that Kafka does not enforce by itself: agent-keyed
topics share one partition count, input topics use the broker's clock
(``LogAppendTime``), and state topics are compacted. :func:`ensure_topics` creates the
topics that are missing and raises :class:`TopicSetupError` when an existing topic
differs, because a worker on such a topic would route or recover wrongly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from streams.errors import BrokerError, TopicSetupError
from streams.kafka_security import aiokafka_security_options
from streams.settings import GateSettings
from streams.topics import TopicSpec, topic_specs

logger = logging.getLogger(__name__)

CLIENT_ID = "stemedb-gate-topic-setup"
# Pause between two attempts to reach the broker or to read metadata that is not ready.
RETRY_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class TopicReport:
    """Outcome of :func:`ensure_topics`: topic names in the order of ``topic_specs``."""

    created: tuple[str, ...]
    existing: tuple[str, ...]


@dataclass(frozen=True)
class TopicMismatch:
    """One setting of an existing topic that differs from what the gate needs."""

    topic: str
    key: str
    expected: str | int
    actual: str | int | None

    def __str__(self) -> str:
        actual = "not set" if self.actual is None else repr(self.actual)
        return f"topic {self.topic!r}: {self.key} is {actual}, expected {self.expected!r}"


@asynccontextmanager
async def admin_client(
    bootstrap_servers: str,
    *,
    request_timeout_ms: int = 30_000,
    security: Mapping[str, Any] | None = None,
) -> AsyncIterator[AIOKafkaAdminClient]:
    """Start an aiokafka admin client and close it on every path.

    ``security`` contains the keyword arguments of
    :func:`streams.kafka_security.aiokafka_security_options`; None connects in PLAINTEXT.
    """
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=CLIENT_ID,
        request_timeout_ms=request_timeout_ms,
        **(security or {}),
    )
    try:
        await client.start()
        yield client
    finally:
        await client.close()


async def wait_for_broker(
    bootstrap_servers: str,
    timeout_seconds: float = 60.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Wait until a broker of ``bootstrap_servers`` responds to a metadata request.

    ``security`` is passed on to :func:`admin_client`. Raises :class:`BrokerError` with
    the last failure when ``timeout_seconds`` pass.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    last_failure = "no attempt finished"
    while True:
        remaining_seconds = deadline - loop.time()
        if remaining_seconds <= 0:
            raise BrokerError(
                f"Kafka at {bootstrap_servers} did not respond to a metadata request within "
                f"{timeout_seconds:g} s (last failure: {last_failure}); check that the "
                "broker runs (stemedb-gate broker status) and that kafka.bootstrap_servers "
                f"names it{_security_hint(security)}"
            )

        # A plain TCP connect first, because aiokafka logs an error for every refused
        # bootstrap connection and a starting broker refuses many.
        try:
            async with asyncio.timeout(remaining_seconds):
                if await _any_server_accepts(bootstrap_servers):
                    async with admin_client(
                        bootstrap_servers,
                        request_timeout_ms=max(1000, int(remaining_seconds * 1000)),
                        security=security,
                    ) as client:
                        await client.list_topics()
                    return
                last_failure = "connection refused"
        except TimeoutError:
            last_failure = "timed out"
        except KafkaError as exc:
            last_failure = str(exc)
        await asyncio.sleep(min(RETRY_INTERVAL_SECONDS, max(0.0, deadline - loop.time())))


def _security_hint(security: Mapping[str, Any] | None) -> str:
    # aiokafka logs a failed SASL login or TLS handshake but raises only "Unable to
    # bootstrap", so the message points at the settings that cause it.
    protocol = (security or {}).get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return ""
    return (
        f", and that the broker's listener accepts {protocol} with these credentials "
        "(kafka.sasl_*, kafka.ssl_*); an authentication or TLS failure is logged above"
    )


async def _any_server_accepts(bootstrap_servers: str) -> bool:
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, ValueError):
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


async def ensure_topics(settings: GateSettings, *, timeout_seconds: float = 60.0) -> TopicReport:
    """Create the missing topics of ``topic_specs(settings)`` and check the existing ones.

    Waits up to ``timeout_seconds`` for the broker, so it can run while Kafka still
    starts, and raises :class:`BrokerError` when it does not respond. Running it again
    creates nothing. Raises :class:`TopicSetupError` listing every topic, key, expected
    and actual value that differ, or when a Kafka request fails or times out.
    """
    bootstrap_servers = settings.kafka.bootstrap_servers
    security = aiokafka_security_options(settings.kafka)
    specs = topic_specs(settings)
    await wait_for_broker(bootstrap_servers, timeout_seconds, security=security)
    try:
        async with (
            asyncio.timeout(timeout_seconds),
            admin_client(bootstrap_servers, security=security) as client,
        ):
            # 1. Find the topics that exist. list_topics reads all names, because a
            # metadata request for named topics can auto-create them with broker defaults.
            present = set(await client.list_topics())
            missing = [spec for spec in specs if spec.name not in present]

            # 2. Create the missing ones. A topic that another process created in the
            # meantime is checked like one that was there before.
            created = await _create_topics(client, missing)
            to_check = [spec for spec in specs if spec.name not in created]

            # 3. Compare partition counts and configs of the topics that were there.
            mismatches = await _find_mismatches(client, to_check)

            # 4. Wait until the broker serves every new partition, so that clients
            # started right after setup find leaders for all of them.
            if created:
                await _describe_partition_counts(client, sorted(created), require_leaders=True)
    except TimeoutError:
        raise TopicSetupError(
            f"topic setup on Kafka at {bootstrap_servers} timed out after "
            f"{timeout_seconds:g} s; check that the broker runs and kafka.bootstrap_servers "
            "names it"
        ) from None
    except KafkaError as exc:
        raise TopicSetupError(f"topic setup on Kafka at {bootstrap_servers} failed: {exc}") from exc

    if mismatches:
        listed = "\n  ".join(str(mismatch) for mismatch in mismatches)
        raise TopicSetupError(
            f"{len(mismatches)} topic setting(s) on Kafka at {bootstrap_servers} differ from "
            f"what the gate needs:\n  {listed}\n"
            "Recreate or alter these topics, or change the [kafka] settings to match them."
        )
    return TopicReport(
        created=tuple(spec.name for spec in specs if spec.name in created),
        existing=tuple(spec.name for spec in specs if spec.name not in created),
    )


async def _create_topics(client: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> set[str]:
    """Create ``specs`` and return the names that this call created."""
    if not specs:
        return set()
    response = await client.create_topics(
        [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.configs),
            )
            for spec in specs
        ]
    )
    by_name = {spec.name: spec for spec in specs}
    created: set[str] = set()
    for result in response.to_object()["topic_errors"]:
        name = result["topic"]
        code = result["error_code"]
        if code == 0:
            spec = by_name[name]
            logger.info(
                "Created topic %s with %d partitions and configs %s",
                name,
                spec.partitions,
                spec.configs,
            )
            created.add(name)
        elif code == TopicAlreadyExistsError.errno:
            logger.info("Topic %s was created by another client meanwhile", name)
        else:
            error = for_code(code)
            detail = result.get("error_message") or error.description
            raise TopicSetupError(f"creating topic {name!r} failed: {error.message}: {detail}")
    return created


async def _find_mismatches(
    client: AIOKafkaAdminClient, specs: Sequence[TopicSpec]
) -> list[TopicMismatch]:
    if not specs:
        return []
    partition_counts = await _describe_partition_counts(client, [spec.name for spec in specs])
    configs = await _describe_configs(client, [spec for spec in specs if spec.configs])

    mismatches: list[TopicMismatch] = []
    for spec in specs:
        actual_partitions = partition_counts[spec.name]
        if actual_partitions != spec.partitions:
            mismatches.append(
                TopicMismatch(spec.name, "partitions", spec.partitions, actual_partitions)
            )
        for key, expected in spec.configs.items():
            actual = configs[spec.name].get(key)
            if actual != expected:
                mismatches.append(TopicMismatch(spec.name, key, expected, actual))
    return mismatches


async def _describe_partition_counts(
    client: AIOKafkaAdminClient, names: Sequence[str], *, require_leaders: bool = False
) -> dict[str, int]:
    """Return the partition count of each topic, retrying while metadata is not ready.

    A topic that was created a moment ago can report a retriable error such as
    LEADER_NOT_AVAILABLE, or partitions without a leader. Those are retried until the
    caller's timeout. Partitions without a leader count as ready unless
    ``require_leaders`` is set.
    """
    while True:
        counts: dict[str, int] = {}
        not_ready: list[str] = []
        for topic in await client.describe_topics(list(names)):
            name = topic["topic"]
            code = topic["error_code"]
            if code != 0:
                error = for_code(code)
                if not error.retriable:
                    raise TopicSetupError(
                        f"describing topic {name!r} failed: {error.message}: {error.description}"
                    )
                not_ready.append(f"{name} ({error.message})")
                continue
            partitions = topic["partitions"]
            leaderless = [p["partition"] for p in partitions if p["leader"] < 0]
            if require_leaders and leaderless:
                not_ready.append(f"{name} (no leader for partitions {leaderless})")
                continue
            counts[name] = len(partitions)
        if not not_ready:
            return counts
        logger.debug("Metadata of topics not ready yet, retrying: %s", not_ready)
        await asyncio.sleep(RETRY_INTERVAL_SECONDS)


async def _describe_configs(
    client: AIOKafkaAdminClient, specs: Iterable[TopicSpec]
) -> dict[str, dict[str, str | None]]:
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=dict(spec.configs))
        for spec in specs
    ]
    if not resources:
        return {}
    configs: dict[str, dict[str, str | None]] = {}
    for response in await client.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            if resource["error_code"] != 0:
                error = for_code(resource["error_code"])
                detail = resource.get("error_message") or error.description
                raise TopicSetupError(
                    f"describing the configs of topic {name!r} failed: {error.message}: {detail}"
                )
            configs[name] = {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
    return configs


def describe_spec(spec: TopicSpec) -> str:
    """Format a topic's partition count and configs for the command line."""
    parts: list[str] = [f"{spec.partitions} partitions"]
    parts.extend(f"{key}={value}" for key, value in sorted(spec.configs.items()))
    return ", ".join(parts)
