"""Topic setup against the session's real Kafka broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.errors import TopicSetupError
from streams.topics import (
    ADMIN_COMMANDS,
    ASSERTIONS,
    BREAKER_STATE,
    CONFIG_STATE,
    QUARANTINE_STATE,
    topic_specs,
)
from streams.topicsetup import admin_client
from tests.conftest import SettingsFactory, TopicsFactory

pytestmark = pytest.mark.integration


async def _topic_configs(bootstrap_servers: str, name: str, keys: list[str]) -> dict[str, str]:
    async with admin_client(bootstrap_servers) as client:
        responses = await client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(keys))]
        )
    resource = responses[0].to_object()["resources"][0]
    return {entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]}


async def _partition_counts(bootstrap_servers: str, names: list[str]) -> dict[str, int]:
    async with admin_client(bootstrap_servers) as client:
        topics = await client.describe_topics(names)
    return {topic["topic"]: len(topic["partitions"]) for topic in topics}


async def test_topic_setup_creates_every_topic_with_configs(
    settings_factory: SettingsFactory, topics_factory: TopicsFactory
) -> None:
    """A fresh prefix: every topic is created with its partitions and configs."""
    settings = settings_factory(kafka={"partitions": 3})
    bootstrap = settings.kafka.bootstrap_servers
    names = [spec.name for spec in topic_specs(settings)]

    report = await topics_factory(settings)

    assert report.created == tuple(names)
    assert report.existing == ()
    assert await _partition_counts(bootstrap, names) == dict.fromkeys(names, 3)
    for topic in (ASSERTIONS, ADMIN_COMMANDS):
        configs = await _topic_configs(
            bootstrap, settings.kafka.topic(topic), ["message.timestamp.type"]
        )
        assert configs["message.timestamp.type"] == "LogAppendTime", topic
    for topic in (QUARANTINE_STATE, BREAKER_STATE, CONFIG_STATE):
        configs = await _topic_configs(
            bootstrap, settings.kafka.topic(topic), ["cleanup.policy", "min.compaction.lag.ms"]
        )
        assert configs["cleanup.policy"] == "compact", topic
        assert configs["min.compaction.lag.ms"] == "0", topic


async def test_topic_setup_second_run_creates_nothing(
    settings_factory: SettingsFactory, topics_factory: TopicsFactory
) -> None:
    """Running setup again on the same prefix finds every topic and changes nothing."""
    settings = settings_factory()
    names = tuple(spec.name for spec in topic_specs(settings))
    await topics_factory(settings)

    second = await topics_factory(settings)

    assert second.created == ()
    assert second.existing == names


async def test_topic_setup_partition_mismatch_names_topic(
    settings_factory: SettingsFactory, topics_factory: TopicsFactory
) -> None:
    """The assertions topic exists with 1 partition while the settings ask for 2."""
    settings = settings_factory(kafka={"partitions": 2})
    assertions = settings.kafka.topic(ASSERTIONS)
    async with admin_client(settings.kafka.bootstrap_servers) as client:
        await client.create_topics(
            [NewTopic(assertions, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )

    with pytest.raises(TopicSetupError) as raised:
        await topics_factory(settings)

    message = str(raised.value)
    assert f"topic {assertions!r}: partitions is 1, expected 2" in message
    assert "1 topic setting(s)" in message


async def test_topic_setup_config_mismatch_names_key(
    settings_factory: SettingsFactory, topics_factory: TopicsFactory
) -> None:
    """A state topic that exists without compaction is reported with key and both values."""
    settings = settings_factory()
    breaker_state = settings.kafka.topic(BREAKER_STATE)
    async with admin_client(settings.kafka.bootstrap_servers) as client:
        await client.create_topics([NewTopic(breaker_state, settings.kafka.partitions, 1)])

    with pytest.raises(TopicSetupError) as raised:
        await topics_factory(settings)

    message = str(raised.value)
    assert f"topic {breaker_state!r}: cleanup.policy is 'delete', expected 'compact'" in message
    # Kafka's default min.compaction.lag.ms is 0, which is what the gate expects.
    assert "min.compaction.lag.ms" not in message
