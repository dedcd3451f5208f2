"""Content-defense reasons, the allow-list, agent state round trips and the idle sweep."""

from __future__ import annotations

from dataclasses import asdict

import orjson
import pytest

from schemas.breaker import BreakerState
from schemas.verdict import Reason, Route
from streams.breaker import Breaker
from streams.decision import (
    MAX_RECENT,
    AgentState,
    AllowEntry,
    SeenEntry,
    claim_key,
    id_key,
    sweep,
)
from streams.settings import CircuitBreakerSettings
from streams.windows import EMPTY, WindowCounts

from .factories import BASE_MS, WINDOW_MS, AgentFeed

LOOKBACK_MS = 48 * 3_600_000
CFG = CircuitBreakerSettings()


# Duplicate


@pytest.mark.parametrize(
    ("later_ms", "duplicate"),
    [
        pytest.param(1_000, True, id="1 s later"),
        pytest.param(LOOKBACK_MS, True, id="at look-back"),
        pytest.param(LOOKBACK_MS + 1, False, id="1 ms after look-back"),
    ],
)
def test_duplicate_same_id(later_ms: int, duplicate: bool) -> None:
    feed = AgentFeed()
    feed.send_new(BASE_MS, id="reading-7")
    decision = feed.send_new(BASE_MS + later_ms, id="reading-7")

    assert (Reason.DUPLICATE in decision.reasons) is duplicate


@pytest.mark.parametrize(
    ("later_ms", "duplicate"),
    [
        pytest.param(1_000, True, id="1 s later"),
        pytest.param(LOOKBACK_MS, True, id="at look-back"),
        pytest.param(LOOKBACK_MS + 1, False, id="1 ms after look-back"),
    ],
)
def test_duplicate_same_normalized_claim(later_ms: int, duplicate: bool) -> None:
    feed = AgentFeed()
    feed.send_new(BASE_MS, subject="Lyon", predicate="located_in", object="France")
    decision = feed.send_new(
        BASE_MS + later_ms, subject="  LYON ", predicate="located_in", object="france"
    )

    assert (Reason.DUPLICATE in decision.reasons) is duplicate


def test_duplicate_routes_to_quarantine() -> None:
    feed = AgentFeed()
    first = feed.send_new(BASE_MS, id="reading-7")
    second = feed.send_new(BASE_MS + 1_000, id="reading-7")

    assert first.route is Route.ACCEPTED
    assert second.route is Route.QUARANTINE
    assert second.reasons == (Reason.DUPLICATE,)


def test_duplicate_writes_id_and_claim_keys() -> None:
    decision = AgentFeed().send_new(
        BASE_MS, id="reading-7", subject="Lyon", predicate="located_in", object="France"
    )
    expected_keys = {id_key("reading-7"), claim_key("Lyon", "located_in", "France")}

    assert set(decision.seen_writes) == expected_keys


def test_duplicate_ignores_other_claims() -> None:
    feed = AgentFeed()
    feed.send_new(BASE_MS, subject="Lyon", object="France")
    decision = feed.send_new(BASE_MS + 1_000, subject="Lyon", object="Europe")

    assert decision.reasons == ()


def test_duplicate_banned_first_copy_not_counted() -> None:
    # A record banned while the breaker was OPEN never entered the store.
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 60).breaker
    feed = AgentFeed(state=AgentState(breaker=banned))
    first = feed.send_new(BASE_MS + 1_000, id="reading-7")
    second = feed.send_new(BASE_MS + 120_000, id="reading-7")

    assert first.route is Route.BANNED
    assert second.route is Route.ACCEPTED


def test_duplicate_id_survives_banned_resend() -> None:
    feed = AgentFeed()
    original = feed.send_new(BASE_MS, id="reading-7", subject="Lyon", object="France")
    banned = feed.state.breaker.manual_open(BASE_MS + 1_000, "spam campaign", 60).breaker
    feed.state = AgentState(breaker=banned, windows=feed.state.windows)
    resent_during_ban = feed.send_new(BASE_MS + 2_000, id="reading-7", subject="Lyon")
    resent_after_ban = feed.send_new(BASE_MS + 120_000, id="reading-7", subject="Marseille")

    assert original.route is Route.ACCEPTED
    assert resent_during_ban.route is Route.BANNED
    assert Reason.DUPLICATE in resent_after_ban.reasons


# UntrustedHighConfidence


@pytest.mark.parametrize(
    ("confidence", "sources", "approvals", "rejections", "flagged"),
    [
        pytest.param(0.95, ["https://example.org/a"], 0, 0, True, id="0.95 untrusted"),
        pytest.param(0.9499, ["https://example.org/a"], 0, 0, False, id="0.9499 untrusted"),
        pytest.param(0.95, ["https://example.org/a"], 5, 0, False, id="0.95 trusted"),
        pytest.param(0.95, ["https://example.org/a"], 4, 0, True, id="0.95 four reviews"),
        pytest.param(0.95, ["https://example.org/a"], 4, 1, False, id="0.95 ratio at 0.8"),
        pytest.param(0.95, ["https://example.org/a"], 3, 2, True, id="0.95 ratio 0.6"),
        pytest.param(0.85, [], 0, 0, True, id="0.85 without sources"),
        pytest.param(0.8499, [], 0, 0, False, id="0.8499 without sources"),
        pytest.param(0.85, ["https://example.org/a"], 0, 0, False, id="0.85 with sources"),
    ],
)
def test_untrusted_high_confidence(
    confidence: float, sources: list[str], approvals: int, rejections: int, flagged: bool
) -> None:
    feed = AgentFeed(state=AgentState(approvals=approvals, rejections=rejections))
    decision = feed.send_new(BASE_MS, confidence=confidence, sources=sources)

    assert (Reason.UNTRUSTED_HIGH_CONFIDENCE in decision.reasons) is flagged


# Allow-list


def test_allowlisted_skips_content_defense() -> None:
    feed = AgentFeed(state=AgentState(allowlist=AllowEntry(reason="partner feed")))
    feed.send_new(BASE_MS, id="reading-7")
    decision = feed.send_new(BASE_MS + 1_000, id="reading-7", object="n/a", confidence=0.99)

    assert decision.route is Route.ACCEPTED
    assert decision.reasons == ()
    assert decision.score is not None
    assert decision.score.value < 0.6


def test_allowlisted_still_counted() -> None:
    feed = AgentFeed(state=AgentState(allowlist=AllowEntry(reason="partner feed")))
    decision = feed.send_new(BASE_MS)

    assert decision.state.windows.submissions == 1
    assert decision.state.windows.scored == 1


def test_allowlisted_flood_opens() -> None:
    counts = WindowCounts(start_ms=BASE_MS, submissions=50, scored=50)
    state = AgentState(allowlist=AllowEntry(reason="partner feed"), windows=counts)
    decision = AgentFeed(state=state).send_new(BASE_MS + 1_000)

    assert decision.state.breaker.state is BreakerState.OPEN


def test_allowlist_expired_entry_ignored() -> None:
    entry = AllowEntry(reason="partner feed", expires_at_ms=BASE_MS)
    decision = AgentFeed(state=AgentState(allowlist=entry)).send_new(BASE_MS, object="n/a")

    assert decision.route is Route.QUARANTINE
    assert decision.reasons == (Reason.LOW_QUALITY,)


# Replay guard and serialization


def test_decide_records_last_offset() -> None:
    feed = AgentFeed(next_offset=41)
    decision = feed.send_new(BASE_MS)

    assert decision.state.last_offset == 41
    assert decision.state.to_dict()["last_offset"] == 41


def test_decide_banned_records_last_offset() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 60).breaker
    feed = AgentFeed(state=AgentState(breaker=banned), next_offset=41)
    decision = feed.send_new(BASE_MS + 1_000)

    assert decision.state.last_offset == 41


def test_agent_state_fresh_last_offset() -> None:
    assert AgentState().last_offset == -1


FULL_STATE = AgentState(
    breaker=Breaker(
        state=BreakerState.HALF_OPEN,
        reason="flooding",
        opened_at_ms=BASE_MS,
        until_ms=BASE_MS + 3_600_000,
        trips=3,
        manual=False,
        failed_half_opens=1,
        half_open_since_ms=BASE_MS + 3_600_000,
        probes_started=2,
        probes_passed=2,
    ),
    windows=WindowCounts(
        start_ms=BASE_MS, submissions=12, scored=10, quarantined=4, previous_submissions=7
    ),
    approvals=6,
    rejections=1,
    allowlist=AllowEntry(reason="partner feed", expires_at_ms=BASE_MS + 1, added_by="alice"),
    last_offset=1234,
)


@pytest.mark.parametrize("state", [AgentState(), FULL_STATE], ids=["default", "full"])
def test_agent_state_round_trip(state: AgentState) -> None:
    assert AgentState.from_dict(state.to_dict()) == state


def test_agent_state_round_trip_json() -> None:
    stored = orjson.loads(orjson.dumps(FULL_STATE.to_dict()))

    assert AgentState.from_dict(stored) == FULL_STATE


def test_seen_entry_round_trip_json() -> None:
    entry = SeenEntry(BASE_MS, 17, "quarantine", ("LowQuality", "Duplicate"), 0.4)
    stored = orjson.loads(orjson.dumps(entry.to_dict()))

    assert SeenEntry.from_dict(stored) == entry


# Sweep


def one_record_state() -> AgentState:
    return AgentFeed().send_new(BASE_MS + 1_000).state


def test_sweep_keeps_agent_within_retention() -> None:
    swept, transitions = sweep(one_record_state(), BASE_MS + 2 * WINDOW_MS - 1, CFG)

    assert swept is not None
    assert swept.windows.submissions == 1
    assert transitions == ()


def test_sweep_drops_idle_agent() -> None:
    swept, _ = sweep(one_record_state(), BASE_MS + 2 * WINDOW_MS, CFG)

    assert swept is None


def test_sweep_keeps_open_agent() -> None:
    banned = Breaker().manual_open(BASE_MS, "spam campaign", 7_200).breaker
    state = AgentState(breaker=banned, windows=one_record_state().windows)
    swept, transitions = sweep(state, BASE_MS + 10 * WINDOW_MS, CFG)

    assert swept is not None
    assert swept.breaker == banned
    assert swept.windows == EMPTY
    assert transitions == ()


def test_sweep_keeps_reviewed_agent() -> None:
    state = AgentState(windows=one_record_state().windows, approvals=1)
    swept, _ = sweep(state, BASE_MS + 10 * WINDOW_MS, CFG)

    assert swept is not None
    assert swept.approvals == 1


def test_sweep_applies_open_timeout() -> None:
    opened = Breaker().trip(BASE_MS, "flooding", CFG).breaker
    swept, transitions = sweep(AgentState(breaker=opened), BASE_MS + 3_600_000, CFG)

    assert swept is not None
    assert swept.breaker.state is BreakerState.HALF_OPEN
    assert transitions[0].to_state is BreakerState.HALF_OPEN


def test_state_to_dict_matches_asdict() -> None:
    state = AgentState(
        breaker=Breaker(state=BreakerState.OPEN, reason="flooding", until_ms=5, trips=2),
        windows=WindowCounts(start_ms=60_000, submissions=3, scored=2),
        approvals=4,
        rejections=1,
        allowlist=AllowEntry(reason="partner", expires_at_ms=9, added_by="ops"),
        last_offset=17,
        recent=(SeenEntry(60_500, 17, "accepted", (), 0.9),),
        recent_from=12,
    )
    expected = asdict(state)
    expected["breaker"]["state"] = "OPEN"
    expected["recent"] = [dict(asdict(state.recent[0]), reasons=[])]
    assert state.to_dict() == expected
    assert AgentState.from_dict(state.to_dict()) == state
    assert AgentState().to_dict()["allowlist"] is None

    entry = SeenEntry(at_ms=1, offset=2, route="accepted", reasons=("Duplicate",))
    assert entry.to_dict() == {**asdict(entry), "reasons": ["Duplicate"]}
    assert SeenEntry.from_dict(entry.to_dict()) == entry


# Verdicts of applied records, kept with the state


def _entry(offset: int, route: str = "accepted") -> SeenEntry:
    return SeenEntry(BASE_MS + offset, offset, route, (), 0.9)


def test_remember_keeps_uncommitted_verdicts() -> None:
    state = AgentState().remember(_entry(3), committed=None).remember(_entry(8), committed=5)

    assert state.applied(8) == _entry(8)
    assert state.applied(3) is None
    assert state.recent_from == 5


def test_remember_caps_the_list() -> None:
    state = AgentState()
    for offset in range(MAX_RECENT + 2):
        state = state.remember(_entry(offset), committed=None)

    assert len(state.recent) == MAX_RECENT
    assert state.recent_from == 2
    assert state.applied(1) is None
    assert state.applied(2) == _entry(2)


def test_remember_late_record_in_order() -> None:
    state = AgentState().remember(_entry(9), committed=4).remember(_entry(6), committed=4)

    assert [entry.offset for entry in state.recent] == [6, 9]


def test_legacy_state_has_no_verdicts() -> None:
    stored = FULL_STATE.to_dict()
    del stored["recent"], stored["recent_from"]

    state = AgentState.from_dict(stored)

    assert state.recent == ()
    assert state.recent_from == FULL_STATE.last_offset + 1
