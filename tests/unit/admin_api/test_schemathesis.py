"""Schemathesis requests from /openapi.json against the admin API, with no server error.

The app runs on 127.0.0.1 with the fake worker of the other unit tests, and no
Kafka. Schemathesis's requests are synchronous (they use ``requests``), so they run
in a worker thread while the event loop of the test serves them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.openapi import from_url

from admin_api.app import create_app
from admin_api.read_model import ReadModel
from streams.settings import GateSettings
from tests.unit.admin_api.conftest import ALICE, FakeWorker, add_items, make_item

# Examples per operation and generation mode, kept small so the unit suite stays fast.
# With 25, the 39 operation-and-mode pairs sent about 900 requests in 8 s on a 2026
# development container. So few examples find shallow crashes only.
MAX_EXAMPLES = 25
GENERATION_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass
class FuzzReport:
    """Requests sent per operation, statuses seen and failures of one run."""

    examples: dict[str, int] = field(default_factory=dict)
    statuses: set[int] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)
    without_negative_input: list[str] = field(default_factory=list)


def _fuzz(base_url: str) -> FuzzReport:
    """Send generated requests to every operation and check each response."""
    schema = from_url(f"{base_url}/openapi.json", config=SchemathesisConfig())
    report = FuzzReport()

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GENERATION_MODES:
            label = f"{operation.label} ({mode.value})"
            try:
                _fuzz_operation(operation, mode, base_url, report, label)
            except Unsatisfiable:
                # An operation without parameters or body has no input to make invalid.
                if mode is GenerationMode.NEGATIVE:
                    del report.examples[label]
                    report.without_negative_input.append(operation.label)
                else:
                    report.failures[label] = "no valid input could be generated"
            except Exception as exc:
                report.failures[label] = f"{type(exc).__name__}: {exc}"

    return report


def _fuzz_operation(
    operation: Any, mode: GenerationMode, base_url: str, report: FuzzReport, label: str
) -> None:
    """Run ``MAX_EXAMPLES`` generated requests against one operation.

    Raises the first failed check, after Hypothesis has tried to shrink it.
    """
    report.examples[label] = 0

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        report.examples[label] += 1
        response = case.call_and_validate(
            base_url=base_url, headers=ALICE, checks=[not_a_server_error], timeout=10
        )
        report.statuses.add(response.status_code)

    check()


def _describe(failures: dict[str, str]) -> str:
    return "\n".join(f"{label}: {message[:500]}" for label, message in sorted(failures.items()))


async def test_schemathesis_finds_no_server_error(
    api_settings: GateSettings, read_model: ReadModel, worker: FakeWorker
) -> None:
    """Every documented operation, fed valid and invalid input, returns a status below 500."""
    add_items(read_model, [make_item(1), make_item(2)])
    app = create_app(api_settings, sink=worker, read_model=read_model)

    async with TestServer(app, host="127.0.0.1") as server:
        base_url = str(server.make_url("")).rstrip("/")
        report = await asyncio.to_thread(_fuzz, base_url)

    assert len(report.examples) >= 19 * 2 - 3, sorted(report.examples)
    assert sorted(report.without_negative_input) == [
        "GET /healthz",
        "GET /metrics",
        "GET /readyz",
    ]
    assert report.failures == {}, _describe(report.failures)
    assert all(count > 0 for count in report.examples.values()), report.examples
    assert not any(status >= 500 for status in report.statuses)
    assert {200, 202, 400}.issubset(report.statuses), sorted(report.statuses)
