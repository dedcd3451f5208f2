"""Tumbling windows, the sliding estimate, and the burst across a window boundary."""

from __future__ import annotations

import pytest

from schemas.breaker import BreakerState
from schemas.verdict import Reason, Route
from streams import windows
from streams.settings import CircuitBreakerSettings
from streams.windows import WindowCounts

from .factories import BASE_MS, WINDOW_MS, AgentFeed

FILLED = WindowCounts(
    start_ms=BASE_MS, submissions=30, scored=28, quarantined=4, previous_submissions=10
)


def test_window_start_rounds_down() -> None:
    assert windows.window_start(BASE_MS + 59_999, WINDOW_MS) == BASE_MS


def test_advance_empty_starts_window() -> None:
    advanced = windows.advance(windows.EMPTY, BASE_MS + 12_345, WINDOW_MS)

    assert advanced == WindowCounts(start_ms=BASE_MS)


def test_advance_within_window_keeps_counts() -> None:
    assert windows.advance(FILLED, BASE_MS + 59_999, WINDOW_MS) == FILLED


def test_advance_to_next_window() -> None:
    advanced = windows.advance(FILLED, BASE_MS + WINDOW_MS, WINDOW_MS)

    assert advanced == WindowCounts(start_ms=BASE_MS + WINDOW_MS, previous_submissions=30)


@pytest.mark.parametrize("skipped", [2, 3, 100])
def test_advance_skipping_windows_resets(skipped: int) -> None:
    timestamp = BASE_MS + skipped * WINDOW_MS + 5
    advanced = windows.advance(FILLED, timestamp, WINDOW_MS)

    assert advanced == WindowCounts(start_ms=BASE_MS + skipped * WINDOW_MS)


@pytest.mark.parametrize("back_ms", [1, WINDOW_MS, 5 * WINDOW_MS])
def test_advance_clock_back_counts_in_current(back_ms: int) -> None:
    assert windows.advance(FILLED, BASE_MS - back_ms, WINDOW_MS) == FILLED


def test_count_scored_and_quarantined() -> None:
    counted = windows.count(FILLED, scored=True, quarantined=True)

    assert counted.submissions == 31
    assert counted.scored == 29
    assert counted.quarantined == 5
    assert counted.previous_submissions == 10


def test_count_unscored() -> None:
    counted = windows.count(FILLED, scored=False, quarantined=False)

    assert counted.submissions == 31
    assert counted.scored == 28
    assert counted.quarantined == 4


@pytest.mark.parametrize(
    ("elapsed_ms", "expected"),
    [
        pytest.param(0, 40.0, id="start: all of previous"),
        pytest.param(15_000, 37.5, id="quarter: three quarters of previous"),
        pytest.param(30_000, 35.0, id="middle: half of previous"),
        pytest.param(59_999, 30.0 + 10 / 60_000, id="last ms: almost none of previous"),
        pytest.param(WINDOW_MS, 30.0, id="end: none of previous"),
    ],
)
def test_sliding_estimate_within_window(elapsed_ms: int, expected: float) -> None:
    estimate = windows.sliding_estimate(FILLED, BASE_MS + elapsed_ms, WINDOW_MS)

    assert estimate == pytest.approx(expected)


def test_sliding_estimate_before_window_start() -> None:
    # A timestamp before the window (clock stepped back) weights the previous window fully.
    assert windows.sliding_estimate(FILLED, BASE_MS - 5_000, WINDOW_MS) == 40.0


def test_sliding_estimate_across_boundary() -> None:
    counts = WindowCounts(start_ms=BASE_MS, submissions=50)
    last_ms_before = windows.sliding_estimate(counts, BASE_MS + 59_999, WINDOW_MS)
    counts = windows.advance(counts, BASE_MS + WINDOW_MS, WINDOW_MS)
    first_ms_after = windows.sliding_estimate(counts, BASE_MS + WINDOW_MS, WINDOW_MS)

    assert last_ms_before == 50.0
    assert first_ms_after == 50.0


@pytest.mark.parametrize(
    ("per_minute", "window_ms", "expected"),
    [(50.0, 60_000, 50.0), (50.0, 30_000, 25.0), (50.0, 120_000, 100.0)],
)
def test_limit_per_window_scales(per_minute: float, window_ms: int, expected: float) -> None:
    assert windows.limit_per_window(per_minute, window_ms) == expected


def test_failure_rate_no_scored_is_zero() -> None:
    assert windows.failure_rate(WindowCounts(submissions=5)) == 0.0


def test_failure_rate_share_of_scored() -> None:
    assert windows.failure_rate(FILLED) == 4 / 28


@pytest.mark.parametrize(
    ("now_ms", "expected"),
    [
        pytest.param(BASE_MS + 2 * WINDOW_MS - 1, False, id="1 ms before retention ends"),
        pytest.param(BASE_MS + 2 * WINDOW_MS, True, id="retention ended"),
    ],
)
def test_expired_after_window_and_retention(now_ms: int, expected: bool) -> None:
    assert windows.expired(FILLED, now_ms, WINDOW_MS, WINDOW_MS) is expected


# A burst across a window boundary: with a limit of 50 per minute, 50 records arrive in the
# last second of one window and 50 in the first second of the next. Fixed windows alone
# would let all 100 through.
BURST_SIZE = 50
BURST_STEP_MS = 20
BOUNDARY_MS = BASE_MS + WINDOW_MS


def burst_timestamps() -> list[int]:
    first = [BOUNDARY_MS - 1_000 + i * BURST_STEP_MS for i in range(BURST_SIZE)]
    second = [BOUNDARY_MS + i * BURST_STEP_MS for i in range(BURST_SIZE)]
    return first + second


def feed_burst_to_windows() -> list[WindowCounts]:
    """Count every burst record in its window and return the counts after each one."""
    counts = windows.EMPTY
    history: list[WindowCounts] = []
    for timestamp in burst_timestamps():
        counts = windows.advance(counts, timestamp, WINDOW_MS)
        counts = windows.count(counts, scored=True, quarantined=False)
        history.append(counts)
    return history


def test_burst_fixed_windows_stay_at_limit() -> None:
    per_window = [counts.submissions for counts in feed_burst_to_windows()]

    assert max(per_window) == BURST_SIZE


def test_burst_sliding_estimate_crosses_in_second_burst() -> None:
    limit = windows.limit_per_window(50.0, WINDOW_MS)
    estimates = [
        windows.sliding_estimate(counts, timestamp, WINDOW_MS)
        for counts, timestamp in zip(feed_burst_to_windows(), burst_timestamps(), strict=True)
    ]
    over_limit = [i for i, estimate in enumerate(estimates) if estimate > limit]

    assert max(estimates[:BURST_SIZE]) <= limit
    assert over_limit, "the sliding estimate never exceeded the limit"
    assert BURST_SIZE <= over_limit[0] < 2 * BURST_SIZE


def test_burst_opens_breaker_before_record_100() -> None:
    feed = AgentFeed(cb=CircuitBreakerSettings(max_submissions_per_minute=50))
    decisions = [feed.send_new(timestamp) for timestamp in burst_timestamps()]
    opened = [i for i, d in enumerate(decisions) if d.state.breaker.state is BreakerState.OPEN]

    assert all(d.route is Route.ACCEPTED for d in decisions[:BURST_SIZE])
    assert opened, "the breaker never opened"
    # Index 99 is record 100, so the breaker must be OPEN at a lower index.
    assert BURST_SIZE <= opened[0] < 2 * BURST_SIZE - 1
    assert decisions[opened[0]].transitions[0].reason == "flooding"
    assert all(d.reasons == (Reason.CIRCUIT_OPEN,) for d in decisions[opened[0] + 1 :])
    # Banned records still count, so the second window contains the whole second burst.
    assert feed.state.windows.submissions == BURST_SIZE


# Records decided after later records of their agent


def test_count_late_in_the_current_window() -> None:
    counts = WindowCounts(start_ms=BASE_MS, submissions=2, scored=2, previous_submissions=5)

    late = windows.count_late(counts, BASE_MS + 10, WINDOW_MS, scored=True, quarantined=True)

    assert late == WindowCounts(
        start_ms=BASE_MS, submissions=3, scored=3, quarantined=1, previous_submissions=5
    )


def test_count_late_in_the_previous_window() -> None:
    counts = WindowCounts(start_ms=BASE_MS, submissions=2, scored=2, previous_submissions=5)

    late = windows.count_late(counts, BASE_MS - 10, WINDOW_MS, scored=True, quarantined=False)

    assert late == WindowCounts(start_ms=BASE_MS, submissions=2, scored=2, previous_submissions=6)


def test_count_late_in_older_window() -> None:
    counts = WindowCounts(start_ms=BASE_MS, submissions=2, scored=2)

    late = windows.count_late(
        counts, BASE_MS - WINDOW_MS - 10, WINDOW_MS, scored=True, quarantined=False
    )

    assert late == counts


def test_late_record_counts_as_in_offset_order() -> None:
    # Offsets 0 and 1 fall in the previous window and 2 in the current one. 1 comes last.
    in_order, late_order = AgentFeed(), AgentFeed()
    times = {0: BASE_MS + 1_000, 1: BASE_MS + 2_000, 2: BASE_MS + WINDOW_MS + 1_000}
    for feed, order in ((in_order, (0, 1, 2)), (late_order, (0, 2, 1))):
        for offset in order:
            feed.next_offset = offset
            feed.send_new(times[offset], object=f"object {offset}")

    assert late_order.state.windows == in_order.state.windows
    assert late_order.state.last_offset == 2
