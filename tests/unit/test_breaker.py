"""Every breaker transition, driven directly and through ``decide``."""

from __future__ import annotations

import pytest

from schemas.breaker import BreakerState
from schemas.verdict import Reason, Route
from streams import breaker as breaker_module
from streams.breaker import Admission, Breaker
from streams.decision import REASON_FAILURE_RATE, REASON_FLOODING, AgentState, reset_breaker
from streams.settings import CircuitBreakerSettings
from streams.windows import EMPTY, WindowCounts

from .factories import BASE_MS, AgentFeed

CFG = CircuitBreakerSettings()
TIMEOUT_MS = 3_600_000
HALF_OPEN_MAX_MS = 600_000
PROBES = 5


def tripped(at_ms: int = BASE_MS) -> Breaker:
    return Breaker().trip(at_ms, "flooding", CFG).breaker


def half_open(at_ms: int = BASE_MS) -> Breaker:
    """Return a breaker that went HALF_OPEN at ``at_ms`` after one automatic trip."""
    return tripped(at_ms - TIMEOUT_MS).tick(at_ms, CFG).breaker


def test_breaker_defaults_match_design() -> None:
    assert CFG.timeout_seconds == TIMEOUT_MS / 1000
    assert CFG.half_open_max_seconds == HALF_OPEN_MAX_MS / 1000
    assert CFG.half_open_probes == PROBES


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (BreakerState.CLOSED, Admission.SCORE),
        (BreakerState.OPEN, Admission.BAN),
        (BreakerState.HALF_OPEN, Admission.PROBE),
    ],
)
def test_admit_by_state(state: BreakerState, expected: Admission) -> None:
    assert Breaker(state=state).admit() is expected


# CLOSED -> OPEN


def test_trip_closed_to_open() -> None:
    step = Breaker().trip(BASE_MS, "flooding", CFG)

    assert step.breaker.state is BreakerState.OPEN
    assert step.breaker.reason == "flooding"
    assert step.breaker.opened_at_ms == BASE_MS
    assert step.breaker.until_ms == BASE_MS + TIMEOUT_MS
    assert step.breaker.manual is False
    assert len(step.transitions) == 1
    assert step.transitions[0].from_state is BreakerState.CLOSED
    assert step.transitions[0].to_state is BreakerState.OPEN
    assert step.transitions[0].at_ms == BASE_MS


def test_trip_when_open_changes_nothing() -> None:
    opened = tripped()
    step = opened.trip(BASE_MS + 1_000, "failure_rate", CFG)

    assert step.breaker == opened
    assert step.transitions == ()


def test_flood_via_decide_opens() -> None:
    feed = AgentFeed()
    feed.state = AgentState(windows=WindowCounts(start_ms=BASE_MS, submissions=49, scored=49))
    at_limit = feed.send_new(BASE_MS + 1_000)
    over_limit = feed.send_new(BASE_MS + 2_000)

    assert at_limit.state.breaker.state is BreakerState.CLOSED
    assert over_limit.state.breaker.state is BreakerState.OPEN
    assert over_limit.state.breaker.reason == REASON_FLOODING
    assert over_limit.route is Route.ACCEPTED


def preloaded(scored: int, quarantined: int) -> AgentFeed:
    """Return a feed whose current window already contains ``scored`` scored records."""
    feed = AgentFeed()
    counts = WindowCounts(
        start_ms=BASE_MS, submissions=scored, scored=scored, quarantined=quarantined
    )
    feed.state = AgentState(windows=counts)
    return feed


@pytest.mark.parametrize(
    ("scored", "quarantined", "bad_record", "opens"),
    [
        pytest.param(18, 18, True, False, id="19 scored all quarantined"),
        pytest.param(19, 19, True, True, id="20 scored all quarantined"),
        pytest.param(19, 5, True, True, id="6 of 20 is the threshold"),
        pytest.param(19, 5, False, False, id="5 of 20 is below"),
        pytest.param(19, 6, False, True, id="6 of 20 with a good last record"),
    ],
)
def test_failure_rate_boundary_via_decide(
    scored: int, quarantined: int, bad_record: bool, opens: bool
) -> None:
    feed = preloaded(scored, quarantined)
    overrides = {"object": "n/a"} if bad_record else {}
    decision = feed.send_new(BASE_MS + 1_000, **overrides)
    expected = BreakerState.OPEN if opens else BreakerState.CLOSED

    assert decision.route is (Route.QUARANTINE if bad_record else Route.ACCEPTED)
    assert decision.state.breaker.state is expected


def test_failure_rate_reason_via_decide() -> None:
    decision = preloaded(19, 19).send_new(BASE_MS + 1_000, object="n/a")

    assert decision.state.breaker.reason == REASON_FAILURE_RATE
    assert decision.transitions[0].reason == REASON_FAILURE_RATE


def test_failure_rate_threshold_setting_used() -> None:
    feed = preloaded(19, 5)
    feed.cb = CircuitBreakerSettings(failure_rate_threshold=0.35)
    decision = feed.send_new(BASE_MS + 1_000, object="n/a")

    assert decision.state.breaker.state is BreakerState.CLOSED


# OPEN records


def test_open_record_banned_counted_unscored() -> None:
    feed = AgentFeed(state=AgentState(breaker=tripped()))
    decision = feed.send_new(BASE_MS + 1_000, object="n/a")

    assert decision.route is Route.BANNED
    assert decision.reasons == (Reason.CIRCUIT_OPEN,)
    assert decision.score is None
    assert decision.state.windows.submissions == 1
    assert decision.state.windows.scored == 0
    assert decision.state.windows.quarantined == 0
    assert decision.transitions == ()


def test_open_record_not_a_duplicate_source() -> None:
    feed = AgentFeed(state=AgentState(breaker=tripped()))
    decision = feed.send_new(BASE_MS + 1_000)
    entries = list(decision.seen_writes.values())

    assert len(entries) == 1
    assert entries[0].scored is False


# OPEN -> HALF_OPEN


def test_tick_before_until_stays_open() -> None:
    opened = tripped()
    step = opened.tick(BASE_MS + TIMEOUT_MS - 1, CFG)

    assert step.breaker == opened
    assert step.transitions == ()


def test_tick_at_until_half_opens() -> None:
    step = tripped().tick(BASE_MS + TIMEOUT_MS, CFG)

    assert step.breaker.state is BreakerState.HALF_OPEN
    assert step.breaker.half_open_since_ms == BASE_MS + TIMEOUT_MS
    assert step.transitions[0].reason == breaker_module.REASON_TIMEOUT_ELAPSED


def test_open_ended_record_is_probe_via_decide() -> None:
    feed = AgentFeed(state=AgentState(breaker=tripped()))
    decision = feed.send_new(BASE_MS + TIMEOUT_MS)

    assert decision.route is Route.ACCEPTED
    assert decision.state.breaker.state is BreakerState.HALF_OPEN
    assert decision.state.breaker.probes_passed == 1


# HALF_OPEN -> CLOSED


def test_probes_all_pass_closes() -> None:
    current = half_open()
    states: list[BreakerState] = []
    for i in range(PROBES):
        current, free = current.start_probe(CFG)
        assert free
        step = current.finish_probe(True, BASE_MS + i, CFG)
        current = step.breaker
        states.append(current.state)

    assert states == [BreakerState.HALF_OPEN] * (PROBES - 1) + [BreakerState.CLOSED]
    assert step.transitions[0].reason == breaker_module.REASON_PROBES_PASSED


def test_probes_pass_via_decide_closes() -> None:
    feed = AgentFeed(state=AgentState(breaker=half_open()))
    decisions = [feed.send_new(BASE_MS + i * 1_000) for i in range(PROBES)]

    assert all(d.route is Route.ACCEPTED for d in decisions)
    assert decisions[-2].state.breaker.state is BreakerState.HALF_OPEN
    assert decisions[-1].state.breaker.state is BreakerState.CLOSED


def test_closing_resets_timeout_doubling() -> None:
    failed_once = half_open().trip(BASE_MS, "probe_failed", CFG).breaker
    assert failed_once.until_ms is not None
    current = failed_once.tick(failed_once.until_ms, CFG).breaker
    for _ in range(PROBES):
        current, _ = current.start_probe(CFG)
        current = current.finish_probe(True, failed_once.until_ms, CFG).breaker
    reopened = current.trip(BASE_MS, "flooding", CFG).breaker

    assert current.state is BreakerState.CLOSED
    assert reopened.until_ms == BASE_MS + TIMEOUT_MS


# HALF_OPEN -> OPEN


def test_failed_probe_reopens_doubled() -> None:
    current, _ = half_open().start_probe(CFG)
    step = current.finish_probe(False, BASE_MS + 5_000, CFG)

    assert step.breaker.state is BreakerState.OPEN
    assert step.breaker.reason == breaker_module.REASON_PROBE_FAILED
    assert step.breaker.until_ms == BASE_MS + 5_000 + 2 * TIMEOUT_MS
    assert step.transitions[0].from_state is BreakerState.HALF_OPEN


def test_failed_probe_via_decide_reopens() -> None:
    feed = AgentFeed(state=AgentState(breaker=tripped()))
    decision = feed.send_new(BASE_MS + TIMEOUT_MS, object="n/a")
    moves = [(t.from_state, t.to_state) for t in decision.transitions]

    assert decision.route is Route.QUARANTINE
    assert moves == [
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
    ]
    assert decision.state.breaker.until_ms == BASE_MS + 3 * TIMEOUT_MS


@pytest.mark.parametrize(
    ("failed_half_opens", "timeout_seconds"),
    [(1, 7_200), (2, 14_400), (3, 28_800), (4, 57_600), (5, 86_400), (6, 86_400)],
)
def test_failed_half_open_timeout_capped(failed_half_opens: int, timeout_seconds: int) -> None:
    current = tripped()
    for _ in range(failed_half_opens):
        assert current.until_ms is not None
        current = current.tick(current.until_ms, CFG).breaker
        current = current.trip(current.half_open_since_ms or 0, "probe_failed", CFG).breaker

    assert current.until_ms is not None
    assert current.opened_at_ms is not None
    assert current.until_ms - current.opened_at_ms == timeout_seconds * 1000


def test_max_timeout_setting_caps() -> None:
    cfg = CircuitBreakerSettings(timeout_seconds=100, max_timeout_seconds=150)
    step = Breaker(state=BreakerState.HALF_OPEN).trip(BASE_MS, "probe_failed", cfg)

    assert step.breaker.until_ms == BASE_MS + 150_000


# HALF_OPEN deadline


def test_half_open_before_deadline_waits() -> None:
    current = half_open()
    step = current.tick(BASE_MS + HALF_OPEN_MAX_MS - 1, CFG)

    assert step.breaker == current
    assert step.transitions == ()


def test_half_open_deadline_none_failed_closes() -> None:
    step = half_open().tick(BASE_MS + HALF_OPEN_MAX_MS, CFG)

    assert step.breaker.state is BreakerState.CLOSED
    assert step.transitions[0].reason == breaker_module.REASON_HALF_OPEN_TIMED_OUT


def test_half_open_deadline_passed_probes_closes() -> None:
    current = half_open()
    for _ in range(2):
        current, _ = current.start_probe(CFG)
        current = current.finish_probe(True, BASE_MS + 1_000, CFG).breaker
    step = current.tick(BASE_MS + HALF_OPEN_MAX_MS, CFG)

    assert step.breaker.state is BreakerState.CLOSED


def test_half_open_deadline_unsettled_probe_reopens() -> None:
    # A probe that started but never passed counts as failed when the deadline decides.
    current, _ = half_open().start_probe(CFG)
    step = current.tick(BASE_MS + HALF_OPEN_MAX_MS, CFG)

    assert step.breaker.state is BreakerState.OPEN
    assert step.breaker.reason == breaker_module.REASON_HALF_OPEN_TIMED_OUT
    assert step.breaker.until_ms == BASE_MS + HALF_OPEN_MAX_MS + 2 * TIMEOUT_MS


# Probe slots


def test_start_probe_when_slots_taken() -> None:
    current = half_open()
    for _ in range(PROBES):
        current, _ = current.start_probe(CFG)
    after, free = current.start_probe(CFG)

    assert free is False
    assert after == current


def test_probes_exhausted_via_decide_banned() -> None:
    # Every probe slot is taken and not yet settled, so the next record waits for the probes.
    busy = Breaker(
        state=BreakerState.HALF_OPEN,
        half_open_since_ms=BASE_MS,
        trips=1,
        probes_started=PROBES,
        probes_passed=PROBES - 1,
    )
    feed = AgentFeed(state=AgentState(breaker=busy))
    decision = feed.send_new(BASE_MS + 1_000)

    assert decision.route is Route.BANNED
    assert decision.reasons == (Reason.HALF_OPEN_PROBES_EXHAUSTED,)
    assert decision.score is None
    assert decision.state.breaker.state is BreakerState.HALF_OPEN
    assert decision.state.windows.submissions == 1
    assert decision.state.windows.scored == 0


# Manual open


def test_manual_open_is_manual() -> None:
    step = Breaker().manual_open(BASE_MS, "spam campaign", 7_200)

    assert step.breaker.state is BreakerState.OPEN
    assert step.breaker.manual is True
    assert step.breaker.reason == "spam campaign"
    assert step.breaker.until_ms == BASE_MS + 7_200_000


def test_manual_open_ignores_auto_timeout() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 7_200).breaker
    step = banned.tick(BASE_MS + TIMEOUT_MS, CFG)

    assert step.breaker == banned


def test_manual_open_good_records_stay_banned() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 7_200).breaker
    feed = AgentFeed(state=AgentState(breaker=banned))
    decisions = [feed.send_new(BASE_MS + TIMEOUT_MS + i * 60_000) for i in range(10)]

    assert all(d.route is Route.BANNED for d in decisions)
    assert feed.state.breaker.state is BreakerState.OPEN
    assert feed.state.breaker.manual is True


def test_manual_open_flood_keeps_ban() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 7_200).breaker
    feed = AgentFeed(state=AgentState(breaker=banned))
    for i in range(60):
        feed.send_new(BASE_MS + 1_000 + i)

    assert feed.state.breaker == banned


def test_manual_open_ends_closed_at_until() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 7_200).breaker
    before = banned.tick(BASE_MS + 7_200_000 - 1, CFG)
    at_until = banned.tick(BASE_MS + 7_200_000, CFG)

    assert before.breaker.state is BreakerState.OPEN
    assert at_until.breaker.state is BreakerState.CLOSED
    assert at_until.breaker.manual is False
    assert at_until.transitions[0].reason == breaker_module.REASON_MANUAL_EXPIRED


def test_manual_open_replaces_auto_open() -> None:
    step = tripped().manual_open(BASE_MS + 1_000, "spam campaign", 60)

    assert step.breaker.manual is True
    assert step.breaker.until_ms == BASE_MS + 61_000


# Reset


def test_reset_breaker_clears_windows() -> None:
    counts = WindowCounts(
        start_ms=BASE_MS, submissions=60, scored=10, quarantined=3, previous_submissions=40
    )
    state = AgentState(breaker=tripped(), windows=counts, approvals=2)
    reset, transitions = reset_breaker(state, BASE_MS + 5_000)

    assert reset.breaker.state is BreakerState.CLOSED
    assert reset.windows == EMPTY
    assert reset.approvals == 2
    assert transitions[0].reason == breaker_module.REASON_RESET
    assert transitions[0].from_state is BreakerState.OPEN


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.HALF_OPEN])
def test_reset_returns_closed(state: BreakerState) -> None:
    step = Breaker(state=state, until_ms=BASE_MS, half_open_since_ms=BASE_MS).reset(BASE_MS)

    assert step.breaker.state is BreakerState.CLOSED
    assert step.breaker.until_ms is None
    assert step.breaker.half_open_since_ms is None


def test_reset_then_record_not_flooding() -> None:
    flooded = AgentFeed()
    for i in range(51):
        flooded.send_new(BASE_MS + i)
    reset, _ = reset_breaker(flooded.state, BASE_MS + 1_000)
    flooded.state = reset
    decision = flooded.send_new(BASE_MS + 2_000)

    assert decision.route is Route.ACCEPTED
    assert decision.state.breaker.state is BreakerState.CLOSED


# Trip count


def test_trips_counted_across_transitions() -> None:
    counts: list[int] = []
    current = Breaker()
    current = current.trip(BASE_MS, "flooding", CFG).breaker
    counts.append(current.trips)
    current = current.trip(BASE_MS + 1, "flooding", CFG).breaker
    counts.append(current.trips)
    current = current.tick(BASE_MS + TIMEOUT_MS, CFG).breaker
    current = current.trip(BASE_MS + TIMEOUT_MS, "probe_failed", CFG).breaker
    counts.append(current.trips)
    current = current.reset(BASE_MS + TIMEOUT_MS).breaker
    counts.append(current.trips)
    current = current.manual_open(BASE_MS + TIMEOUT_MS, "spam campaign", 60).breaker
    counts.append(current.trips)

    assert counts == [1, 1, 2, 2, 3]
