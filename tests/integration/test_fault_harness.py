"""The fault harness end to end: kills, a second worker and a broker restart, then audit.

It starts its own broker on 127.0.0.1:19192, so it does not share the tests' broker.
"""

from __future__ import annotations

import pytest

from streams.faults import run_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_at_least_once_survives_kills_and_restarts() -> None:
    lines: list[str] = []
    report = await run_faults(
        records=3000, kills=2, guarantee="at_least_once", seed=5, progress=lines.append
    )

    assert report.kills == 2
    assert report.rebalances_forced == 2
    assert report.broker_restarts == 1
    assert report.agents_compared > 0
    assert report.lost == 0, report.format()
    assert report.state_mismatches == 0, report.mismatch_examples
    assert report.passed
