"""Prometheus metrics of the admin API, in a registry of their own per application.

Quarantine counts come from the read model at scrape time, so they describe the whole
gate (every partition), unlike the worker's ``stemedb_quarantine_pending``, which
counts only the partitions of one worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.breaker import BreakerState

if TYPE_CHECKING:
    from admin_api.read_model import ReadModel

EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0)


class _ReadModelCollector(Collector):
    """Reads the quarantine and breaker counts from the read model on every scrape."""

    def __init__(self, read_model: ReadModel) -> None:
        self.read_model = read_model

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        quarantine = self.read_model.quarantine
        yield GaugeMetricFamily(
            "stemedb_quarantine_pending",
            "Quarantine items pending review, over all partitions, as the read model has them.",
            value=quarantine.count("pending"),
        )
        yield CounterMetricFamily(
            "stemedb_quarantine_approved",
            "Quarantine items approved, as the read model has them.",
            value=quarantine.count("approved"),
        )
        yield CounterMetricFamily(
            "stemedb_quarantine_rejected",
            "Quarantine items rejected, as the read model has them.",
            value=quarantine.count("rejected"),
        )
        breakers = GaugeMetricFamily(
            "stemedb_admin_api_breakers",
            "Agents with a breaker record, by state.",
            labels=["state"],
        )
        for state in BreakerState:
            breakers.add_metric([state.value], self.read_model.breakers.count(state.value))
        yield breakers
        yield GaugeMetricFamily(
            "stemedb_admin_api_read_model_ready",
            "1 once the read model has read the state topics up to their end at start.",
            value=1 if self.read_model.ready else 0,
        )
        invalid = CounterMetricFamily(
            "stemedb_admin_api_invalid_records",
            "Records of the read topics that did not decode and were skipped, by topic.",
            labels=["topic"],
        )
        for topic, count in sorted(self.read_model.invalid_records.items()):
            invalid.add_metric([topic], count)
        yield invalid


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "stemedb_admin_api_requests",
            "HTTP requests, by route, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "stemedb_admin_api_request_seconds",
            "Time to answer an HTTP request, by route and method.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS_SECONDS,
            registry=registry,
        )
        self.commands = Counter(
            "stemedb_admin_api_commands",
            "Admin commands published, by kind.",
            ["kind"],
            registry=registry,
        )
        self.command_results = Counter(
            "stemedb_admin_api_command_results",
            "Results received by requests that waited, by command kind and result.",
            ["kind", "result"],
            registry=registry,
        )

    def watch(self, read_model: ReadModel) -> None:
        """Export the read model's counts from now on."""
        self.registry.register(_ReadModelCollector(read_model))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
