"""Prometheus metrics of the worker, kept in a registry of their own per app."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4"
DECISION_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class GateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.routed = Counter(
            "stemedb_routed_total", "Assertions routed, by route.", ["route"], registry=registry
        )
        self.invalid = Counter(
            "stemedb_invalid_total", "Records dead-lettered, by kind.", ["kind"], registry=registry
        )
        self.quarantined = Counter(
            "stemedb_quarantine_total",
            "Assertions quarantined, by reason (a record with two reasons counts in both).",
            ["reason"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "stemedb_breaker_transitions_total",
            "Circuit breaker transitions, by target state and reason.",
            ["to_state", "reason"],
            registry=registry,
        )
        self.approved = Counter(
            "stemedb_quarantine_approved_total",
            "Quarantined assertions approved by an operator and sent to accepted.",
            registry=registry,
        )
        self.rejected = Counter(
            "stemedb_quarantine_rejected_total",
            "Quarantined assertions rejected by an operator.",
            registry=registry,
        )
        self.replays = Counter(
            "stemedb_replayed_records_total",
            "Records seen again after a restart or rebalance and answered with their "
            "stored verdict.",
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "stemedb_decision_seconds",
            "Time to decide and route one record inside the worker.",
            buckets=DECISION_BUCKETS_SECONDS,
            registry=registry,
        )
        self.quarantine_pending = Gauge(
            "stemedb_quarantine_pending",
            "Quarantine items pending review on this worker's partitions, as of the last sweep.",
            registry=registry,
        )
        self.agents_tracked = Gauge(
            "stemedb_agents_tracked",
            "Agents with state on this worker's partitions, as of the last sweep.",
            registry=registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        # aiohttp takes the charset separately, so the type carries only the format version.
        return generate_latest(self.registry), EXPOSITION_CONTENT_TYPE
