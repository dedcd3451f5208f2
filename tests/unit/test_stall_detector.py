"""A partition with lag whose committed offset does not move is reported as stalled."""

from __future__ import annotations

from streams.lag import StallDetector
from streams.metrics import PartitionOffsets


def _offsets(committed: int | None, end: int) -> list[PartitionOffsets]:
    return [PartitionOffsets("t.assertions", 4, end=end, committed=committed)]


def test_stall_reported_after_timeout() -> None:
    detector = StallDetector(stall_timeout_seconds=60)
    assert detector.observe(_offsets(691, 891), now=0.0) == []
    assert detector.observe(_offsets(691, 891), now=59.0) == []
    stalled = detector.observe(_offsets(691, 891), now=60.0)
    assert len(stalled) == 1
    assert "t.assertions[4]" in stalled[0]


def test_stall_progress_resets_clock() -> None:
    detector = StallDetector(stall_timeout_seconds=60)
    detector.observe(_offsets(691, 891), now=0.0)
    detector.observe(_offsets(700, 891), now=50.0)
    assert detector.observe(_offsets(700, 891), now=100.0) == []


def test_stall_no_lag_is_never_stalled() -> None:
    detector = StallDetector(stall_timeout_seconds=10)
    detector.observe(_offsets(891, 891), now=0.0)
    assert detector.observe(_offsets(891, 891), now=100.0) == []
