"""Rates over the last minute, the bound on per-agent series, and the sweep's gauges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from schemas.breaker import BreakerState
from schemas.verdict import Route
from streams.breaker import Breaker
from streams.decision import AgentState
from streams.metrics import GateMetrics, MinuteCounter, PartitionOffsets
from streams.windows import WindowCounts


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _samples(metrics: GateMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.exposition()
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_minute_counter_forgets_after_window() -> None:
    clock = _Clock()
    counter = MinuteCounter(window_seconds=60, clock=clock)
    counter.add("a", 3)
    clock.now += 30
    counter.add("a")
    counter.add("b", 2)
    assert counter.totals() == {"a": 4, "b": 2}

    clock.now += 30  # the first bucket is now 60 s old
    assert counter.totals() == {"a": 1, "b": 2}

    clock.now += 30
    assert counter.total() == 0
    assert dict(counter.totals()) == {}


def test_minute_counter_top_sums_rest() -> None:
    clock = _Clock()
    counter = MinuteCounter(clock=clock)
    for key, amount in {"a": 5, "b": 9, "c": 1, "d": 5}.items():
        counter.add(key, amount)

    top, rest = counter.top(2)

    assert top == [("b", 9), ("a", 5)]
    assert rest == 6


def test_per_agent_series_bounded_by_top_agents() -> None:
    metrics = GateMetrics(CollectorRegistry(), top_agents=3)
    for index in range(50):
        for _ in range(index + 1):
            metrics.record_decision(f"agent-{index:02d}", Route.QUARANTINE)

    samples = _samples(metrics)
    per_agent = {
        dict(labels)["agent_id"]: value
        for (name, labels), value in samples.items()
        if name == "stemedb_quarantine_rate_per_agent"
    }

    assert per_agent == {
        "agent-49": 50,
        "agent-48": 49,
        "agent-47": 48,
        "other": sum(range(1, 48)),
    }
    assert samples[("stemedb_quarantine_rate_per_minute", ())] == sum(range(1, 51))


def test_ingest_rates_count_every_record() -> None:
    metrics = GateMetrics(CollectorRegistry())
    metrics.record_decision("agent-a", Route.ACCEPTED)
    metrics.record_decision("agent-a", Route.BANNED)
    for _ in range(3):
        metrics.record_handled(0.001)

    samples = _samples(metrics)

    assert samples[("stemedb_ingest_rate_per_minute", ())] == 3
    assert samples[("stemedb_ingest_rate_per_agent", (("agent_id", "agent-a"),))] == 2
    assert samples[("stemedb_ingest_rate_per_agent", (("agent_id", "other"),))] == 0
    assert samples[("stemedb_quarantine_rate_per_minute", ())] == 0
    assert samples[("stemedb_decision_seconds_count", ())] == 3


def test_sweep_sets_breakers_windows_pending() -> None:
    metrics = GateMetrics(CollectorRegistry())
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    states = [
        AgentState(windows=WindowCounts(start_ms=0, submissions=7, scored=6, quarantined=2)),
        AgentState(breaker=replace(Breaker(), state=BreakerState.OPEN)),
        AgentState(breaker=replace(Breaker(), state=BreakerState.OPEN)),
    ]
    items = [
        {"status": "pending", "quarantined_at": (now - timedelta(minutes=5)).isoformat()},
        {"status": "pending", "quarantined_at": (now - timedelta(minutes=1)).isoformat()},
        {"status": "approved", "quarantined_at": (now - timedelta(hours=2)).isoformat()},
    ]

    metrics.record_sweep(states, items, now)
    samples = _samples(metrics)

    assert samples[("stemedb_agents_tracked", ())] == 3
    assert samples[("stemedb_breakers", (("state", "OPEN"),))] == 2
    assert samples[("stemedb_breakers", (("state", "CLOSED"),))] == 1
    assert samples[("stemedb_breakers", (("state", "HALF_OPEN"),))] == 0
    assert samples[("stemedb_window_records", (("count", "submissions"),))] == 7
    assert samples[("stemedb_window_records", (("count", "quarantined"),))] == 2
    assert samples[("stemedb_quarantine_pending", ())] == 2
    assert samples[("stemedb_quarantine_oldest_pending_age_seconds", ())] == 300


def test_sweep_without_pending_age_zero() -> None:
    metrics = GateMetrics(CollectorRegistry())
    metrics.record_sweep([], [], datetime(2026, 3, 1, tzinfo=UTC))
    assert _samples(metrics)[("stemedb_quarantine_oldest_pending_age_seconds", ())] == 0


def test_lag_is_end_minus_committed() -> None:
    metrics = GateMetrics(CollectorRegistry())
    metrics.record_offsets(
        [
            PartitionOffsets("stemedb.assertions", 0, end=120, committed=100),
            PartitionOffsets("stemedb.assertions", 1, end=40, committed=None, beginning=10),
        ],
        polled_at=1_700_000_000.0,
    )

    samples = _samples(metrics)
    first = (("partition", "0"), ("topic", "stemedb.assertions"))
    second = (("partition", "1"), ("topic", "stemedb.assertions"))

    assert samples[("stemedb_consumer_lag", first)] == 20
    assert samples[("stemedb_consumer_lag", second)] == 30
    assert ("stemedb_consumer_committed_offset", second) not in samples
    assert samples[("stemedb_consumer_lag_poll_timestamp_seconds", ())] == 1_700_000_000.0


def test_lag_drops_revoked_partitions() -> None:
    metrics = GateMetrics(CollectorRegistry())
    metrics.record_offsets([PartitionOffsets("t", 0, end=5, committed=5)], 1.0)
    metrics.record_offsets([PartitionOffsets("t", 1, end=9, committed=3)], 2.0)

    lag = {
        labels: value
        for (name, labels), value in _samples(metrics).items()
        if name == "stemedb_consumer_lag"
    }

    assert lag == {(("partition", "1"), ("topic", "t")): 6}
