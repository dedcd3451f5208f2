"""Prometheus metrics of the worker, kept in a registry of their own per app.

Three kinds of values are exported:

- counters and the decision-latency histogram, updated on every record;
- gauges of the agents' state (pending quarantine items, breakers by state, window
  counts), set by the periodic sweep, so they are as old as the last sweep;
- rates over the last minute (ingest, quarantine, and both per agent), computed at
  scrape time from one-second buckets of this worker's wall clock, and the consumer
  lag that :mod:`streams.lag` last read from the broker.

Agent ids are unbounded, so the per-agent series name only the ``top_agents`` agents
with the highest rate and sum every other agent under ``agent_id="other"``.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter as CountMap
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.breaker import BreakerState
from schemas.verdict import Route
from streams.decision import AgentState

EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4"
DECISION_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
RATE_WINDOW_SECONDS = 60
OTHER_AGENTS = "other"
WINDOW_COUNTS = ("submissions", "scored", "quarantined")


class AgentTotals:
    """Counts over agents' states, added one state at a time so no list is kept."""

    def __init__(self) -> None:
        self.tracked = 0
        self.by_state: CountMap[str] = CountMap()
        self.windows: CountMap[str] = CountMap()

    def add(self, state: AgentState) -> None:
        self.tracked += 1
        self.by_state[state.breaker.state.value] += 1
        self.windows["submissions"] += state.windows.submissions
        self.windows["scored"] += state.windows.scored
        self.windows["quarantined"] += state.windows.quarantined


class MinuteCounter:
    """Counts events per key over the last ``window_seconds``, in one-second buckets.

    ``totals`` always contains the sum of the live buckets, so reading a rate costs no
    more than the number of keys, and expiring a bucket subtracts its counts once.
    """

    def __init__(
        self,
        window_seconds: int = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self._clock = clock
        self._buckets: deque[tuple[int, CountMap[str]]] = deque()
        self._totals: CountMap[str] = CountMap()

    def add(self, key: str, amount: int = 1) -> None:
        second = self._expire()
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, CountMap()))
        self._buckets[-1][1][key] += amount
        self._totals[key] += amount

    def totals(self) -> Mapping[str, int]:
        """Return the count of each key over the window that ends now."""
        self._expire()
        return self._totals

    def total(self) -> int:
        return sum(self.totals().values())

    def top(self, count: int) -> tuple[list[tuple[str, int]], int]:
        """Return the ``count`` keys with the highest counts, and the sum of all others.

        Ties are broken by key, so the same counts always name the same keys.
        """
        totals = self.totals()
        top = heapq.nsmallest(count, totals.items(), key=lambda item: (-item[1], item[0]))
        named = {key for key, _ in top}
        rest = sum(n for key, n in totals.items() if key not in named)
        return top, rest

    def _expire(self) -> int:
        second = int(self._clock())
        oldest_kept = second - self.window_seconds + 1
        while self._buckets and self._buckets[0][0] < oldest_kept:
            _, expired = self._buckets.popleft()
            self._totals.subtract(expired)
            for key, _count in expired.items():
                if self._totals[key] <= 0:
                    del self._totals[key]
        return second


@dataclass(frozen=True)
class PartitionOffsets:
    """Offsets of one partition that the worker's consumer group reads.

    ``committed`` is ``None`` when the group has not committed an offset for the
    partition yet; the lag then counts from ``beginning``, where the worker starts.
    """

    topic: str
    partition: int
    end: int
    committed: int | None
    beginning: int = 0

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.beginning
        return max(self.end - start, 0)


class GateMetrics:
    def __init__(self, registry: CollectorRegistry, top_agents: int = 10) -> None:
        self.registry = registry
        self.top_agents = top_agents
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
        self.redeliveries = Counter(
            "stemedb_redelivery_seeks_total",
            "Seeks back to records that were fetched but never reached the stream, "
            "dropped by a buffer clear or found as a hole in the acknowledgements.",
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
        self.quarantine_oldest_age = Gauge(
            "stemedb_quarantine_oldest_pending_age_seconds",
            "Age of the oldest pending quarantine item on this worker's partitions, as of "
            "the last sweep; 0 when none is pending.",
            registry=registry,
        )
        self.agents_tracked = Gauge(
            "stemedb_agents_tracked",
            "Agents with state on this worker's partitions, as of the last sweep.",
            registry=registry,
        )
        self.breakers = Gauge(
            "stemedb_breakers",
            "Agents on this worker's partitions by circuit breaker state, as of the last sweep.",
            ["state"],
            registry=registry,
        )
        self.window_records = Gauge(
            "stemedb_window_records",
            "Records in the agents' current windows on this worker's partitions, summed over "
            "agents, by count (submissions, scored, quarantined), as of the last sweep.",
            ["count"],
            registry=registry,
        )
        self.lag_polls = Counter(
            "stemedb_consumer_lag_polls_total",
            "Reads of end and committed offsets for the consumer lag, by result (ok, error).",
            ["result"],
            registry=registry,
        )
        self.lag_polled_at = Gauge(
            "stemedb_consumer_lag_poll_timestamp_seconds",
            "Unix time of the last successful read behind stemedb_consumer_lag.",
            registry=registry,
        )
        for state in BreakerState:
            self.breakers.labels(state.value)
        for count in WINDOW_COUNTS:
            self.window_records.labels(count)
        for result in ("ok", "error"):
            self.lag_polls.labels(result)

        self.ingest_by_agent = MinuteCounter()
        self.quarantine_by_agent = MinuteCounter()
        self.ingest = MinuteCounter()
        self.offsets: list[PartitionOffsets] = []
        registry.register(_MinuteRates(self))
        registry.register(_ConsumerLag(self))

    # -- per record -------------------------------------------------------------------

    def record_handled(self, seconds: float) -> None:
        """Count one record read from ``assertions``, dead letters and replays included."""
        self.decision_seconds.observe(seconds)
        self.ingest.add("")

    def record_decision(self, agent_id: str, route: Route) -> None:
        """Count one decided (not replayed) assertion against its agent's rates."""
        self.ingest_by_agent.add(agent_id)
        if route is Route.QUARANTINE:
            self.quarantine_by_agent.add(agent_id)

    # -- periodic -------------------------------------------------------------------

    def record_sweep(
        self,
        states: Iterable[AgentState],
        quarantine_items: Iterable[Mapping[str, object]],
        now: datetime,
    ) -> None:
        """Set the state gauges from the agents and quarantine items the sweep saw."""
        totals = AgentTotals()
        for state in states:
            totals.add(state)
        self.record_agent_totals(totals, quarantine_items, now)

    def record_agent_totals(
        self,
        totals: AgentTotals,
        quarantine_items: Iterable[Mapping[str, object]],
        now: datetime,
    ) -> None:
        """Set the state gauges from agent totals and the quarantine items."""
        self.agents_tracked.set(totals.tracked)
        for breaker_state in BreakerState:
            self.breakers.labels(breaker_state.value).set(totals.by_state[breaker_state.value])
        for count in WINDOW_COUNTS:
            self.window_records.labels(count).set(totals.windows[count])

        pending = 0
        oldest: datetime | None = None
        for item in quarantine_items:
            if item.get("status") != "pending":
                continue
            pending += 1
            quarantined_at = _parse_time(item.get("quarantined_at"))
            if quarantined_at is not None and (oldest is None or quarantined_at < oldest):
                oldest = quarantined_at
        self.quarantine_pending.set(pending)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        self.quarantine_oldest_age.set(max(age, 0.0))

    def record_offsets(self, offsets: list[PartitionOffsets], polled_at: float) -> None:
        """Replace the partitions behind ``stemedb_consumer_lag`` with a new reading."""
        self.offsets = offsets
        self.lag_polled_at.set(polled_at)
        self.lag_polls.labels("ok").inc()

    def record_offsets_failed(self) -> None:
        self.lag_polls.labels("error").inc()

    def exposition(self) -> tuple[bytes, str]:
        # aiohttp takes the charset separately, so the type carries only the format version.
        return generate_latest(self.registry), EXPOSITION_CONTENT_TYPE


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _MinuteRates(Collector):
    """The rates over the last minute, computed when Prometheus scrapes."""

    def __init__(self, metrics: GateMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        ingest = GaugeMetricFamily(
            "stemedb_ingest_rate_per_minute",
            "Records read from assertions by this worker in the last 60 seconds, dead "
            "letters and replays included.",
        )
        ingest.add_metric([], metrics.ingest.total())
        yield ingest

        quarantine = GaugeMetricFamily(
            "stemedb_quarantine_rate_per_minute",
            "Assertions this worker quarantined in the last 60 seconds.",
        )
        quarantine.add_metric([], metrics.quarantine_by_agent.total())
        yield quarantine

        yield _per_agent(
            "stemedb_quarantine_rate_per_agent",
            "Assertions quarantined in the last 60 seconds, for the agents with the most; "
            "agent_id 'other' sums the rest.",
            metrics.quarantine_by_agent,
            metrics.top_agents,
        )
        yield _per_agent(
            "stemedb_ingest_rate_per_agent",
            "Assertions decided in the last 60 seconds (banned ones included), for the "
            "agents with the most; agent_id 'other' sums the rest.",
            metrics.ingest_by_agent,
            metrics.top_agents,
        )


def _per_agent(name: str, documentation: str, counts: MinuteCounter, top: int) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["agent_id"])
    named, rest = counts.top(top)
    for agent_id, count in named:
        family.add_metric([agent_id], count)
    family.add_metric([OTHER_AGENTS], rest)
    return family


class _ConsumerLag(Collector):
    """The offsets of the last reading of :class:`streams.lag.LagMonitor`.

    Only partitions assigned to this worker at that reading are exported, so the
    workers of one group never export the same partition twice.
    """

    def __init__(self, metrics: GateMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        lag = GaugeMetricFamily(
            "stemedb_consumer_lag",
            "End offset minus the consumer group's committed offset, per partition "
            "assigned to this worker, as of the last read.",
            labels=labels,
        )
        end = GaugeMetricFamily(
            "stemedb_consumer_end_offset",
            "End offset (the offset of the next record) per assigned partition.",
            labels=labels,
        )
        committed = GaugeMetricFamily(
            "stemedb_consumer_committed_offset",
            "The consumer group's committed offset per assigned partition; absent before "
            "the first commit.",
            labels=labels,
        )
        for offsets in self.metrics.offsets:
            values = [offsets.topic, str(offsets.partition)]
            lag.add_metric(values, offsets.lag)
            end.add_metric(values, offsets.end)
            if offsets.committed is not None:
                committed.add_metric(values, offsets.committed)
        yield lag
        yield end
        yield committed
