"""The gate's topics: names from the settings prefix, partition counts and configs."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.settings import GateSettings

ASSERTIONS = "assertions"
ADMIN_COMMANDS = "admin-commands"
ACCEPTED = "accepted"
QUARANTINE = "quarantine"
BANNED = "banned"
INVALID = "invalid"
ADMIN_EVENTS = "admin-events"
QUARANTINE_STATE = "quarantine-state"
BREAKER_STATE = "breaker-state"
CONFIG_STATE = "config-state"

ROUTE_TOPICS = (ACCEPTED, QUARANTINE, BANNED)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: GateSettings) -> list[TopicSpec]:
    """Return every topic of the design with the configs the gate relies on.

    Agent-keyed topics share one partition count, so an agent's records, commands and
    state all live on the same partition number. Input topics take the broker's clock
    (LogAppendTime) so that a producer's clock cannot move windows or look-backs.
    """
    kafka = settings.kafka
    broker_time = {"message.timestamp.type": "LogAppendTime"}
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    plain: dict[str, str] = {}
    layout = [
        (ASSERTIONS, broker_time),
        (ADMIN_COMMANDS, broker_time),
        (ACCEPTED, plain),
        (QUARANTINE, plain),
        (BANNED, plain),
        (INVALID, plain),
        (ADMIN_EVENTS, plain),
        (QUARANTINE_STATE, compacted),
        (BREAKER_STATE, compacted),
        (CONFIG_STATE, compacted),
    ]
    return [
        TopicSpec(kafka.topic(name), kafka.partitions, kafka.replication_factor, dict(configs))
        for name, configs in layout
    ]
