"""Scoring rules at their boundaries, score clamping, and the LowQuality threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from schemas.verdict import Reason, Route
from streams import scoring
from streams.scoring import RULES, ClaimView, ScoringContext, score
from streams.settings import ContentDefenseSettings

from .factories import BASE_MS, AgentFeed, ms_to_datetime

RECORD_TIME = ms_to_datetime(BASE_MS)
CONTEXT = ScoringContext(record_time=RECORD_TIME, max_future_skew_seconds=300, max_age_hours=168)
GOOD = ClaimView(
    subject="Paris",
    predicate="capital_of",
    object="France",
    confidence=0.7,
    sources=("https://en.wikipedia.org/wiki/Paris",),
    created_at=RECORD_TIME,
)


def distinct_text(length: int) -> str:
    """Return ``length`` letters with no repeated neighbours, so only the length rule can apply."""
    return ("abcdefghij" * (length // 10 + 1))[:length]


def penalties_of(**changes: Any) -> set[str]:
    return set(score(replace(GOOD, **changes), CONTEXT).penalties)


def test_score_good_claim_is_one() -> None:
    result = score(GOOD, CONTEXT)

    assert result.value == 1.0
    assert result.penalties == {}


# Each row: test id, the fields changed from GOOD, and the rules expected to apply.
RULE_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # structure
    ("subject empty", {"subject": ""}, {"structure", "placeholder"}),
    ("subject blank", {"subject": "  \t "}, {"structure", "placeholder"}),
    ("object empty", {"object": ""}, {"structure", "placeholder"}),
    ("predicate camel case", {"predicate": "capitalOf"}, {"structure"}),
    ("predicate with space", {"predicate": "capital of"}, {"structure"}),
    ("predicate leading digit", {"predicate": "1st_city_of"}, {"structure"}),
    ("predicate namespaced", {"predicate": "geo:capital_of"}, set()),
    ("predicate empty namespace", {"predicate": "geo:"}, {"structure"}),
    # length
    ("subject at max", {"subject": distinct_text(scoring.SUBJECT_MAX_CHARS)}, set()),
    ("subject over max", {"subject": distinct_text(scoring.SUBJECT_MAX_CHARS + 1)}, {"length"}),
    ("object at max", {"object": distinct_text(scoring.OBJECT_MAX_CHARS)}, set()),
    ("object over max", {"object": distinct_text(scoring.OBJECT_MAX_CHARS + 1)}, {"length"}),
    (
        "predicate at max",
        {"predicate": distinct_text(scoring.PREDICATE_MAX_CHARS)},
        set(),
    ),
    (
        "predicate over max",
        {"predicate": distinct_text(scoring.PREDICATE_MAX_CHARS + 1)},
        {"length"},
    ),
    # junk_text: alphanumeric share, repeated runs, control characters
    ("alnum share exactly half", {"subject": "R&D!"}, set()),
    ("alnum share below half", {"subject": "R&D!!"}, {"junk_text"}),
    ("alnum share ignores spaces", {"subject": "R & D !"}, set()),
    ("repeat run of 6", {"subject": "Hmmmmmm"}, set()),
    ("repeat run of 7", {"subject": "Hmmmmmmm"}, {"junk_text"}),
    ("repeat run ignores case", {"subject": "HmmmMMMm"}, {"junk_text"}),
    ("object repeat run of 7", {"object": "Franceeeeeee"}, {"junk_text"}),
    ("control character", {"object": "France\x00"}, {"junk_text"}),
    ("zero width space", {"object": "Fra\u200bnce"}, {"junk_text"}),
    ("accented letters", {"subject": "Zürich"}, set()),
    # placeholder look-alikes that are real values
    ("not placeholder foobar", {"object": "foobar"}, set()),
    ("not placeholder todos", {"object": "Todos Santos"}, set()),
    # sources
    ("no source", {"sources": ()}, {"no_source"}),
    ("sources at max count", {"sources": ("https://example.org/a",) * scoring.MAX_SOURCES}, set()),
    (
        "sources over max count",
        {"sources": ("https://example.org/a",) * (scoring.MAX_SOURCES + 1)},
        {"bad_source"},
    ),
    (
        "source at max length",
        {"sources": ("https://example.org/" + "a" * (scoring.SOURCE_MAX_CHARS - 20),)},
        set(),
    ),
    (
        "source over max length",
        {"sources": ("https://example.org/" + "a" * (scoring.SOURCE_MAX_CHARS - 19),)},
        {"bad_source"},
    ),
    ("one bad among good", {"sources": ("https://example.org/a", "ftp://x.org/a")}, {"bad_source"}),
    # self_reference
    ("subject equals object", {"subject": "Paris", "object": "Paris"}, {"self_reference"}),
    ("same after normalizing", {"subject": "Paris", "object": "  PARIS "}, {"self_reference"}),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [pytest.param(changes, expected, id=name) for name, changes, expected in RULE_CASES],
)
def test_rule_boundary(changes: dict[str, Any], expected: set[str]) -> None:
    assert penalties_of(**changes) == expected


@pytest.mark.parametrize(
    "source",
    [
        "https://en.wikipedia.org/wiki/Paris",
        "http://example.org",
        "HTTPS://EXAMPLE.ORG/Paris",
        "doi:10.1000/182",
        "urn:isbn:0451450523",
        "isbn:9780306406157",
        "arxiv:2101.00001",
    ],
)
def test_source_scheme_allowed(source: str) -> None:
    assert "bad_source" not in penalties_of(sources=(source,))


@pytest.mark.parametrize(
    "source",
    [
        "ftp://example.org/paris.txt",
        "file:///etc/passwd",
        "mailto:editor@example.org",
        "example.org/paris",
        "//example.org/paris",
        "http:///paris",
        "doi:",
        "https://example.org/a b",
        "",
    ],
)
def test_source_scheme_rejected(source: str) -> None:
    assert "bad_source" in penalties_of(sources=(source,))


PLACEHOLDER_FORMS = [
    *sorted(scoring.PLACEHOLDERS - {""}),
    "N/A",
    "  TODO ",
    "Lorem   Ipsum",
    "NULL",
    "\uff4e/\uff41",  # fullwidth "n/a", equal to "n/a" after NFKC
]


@pytest.mark.parametrize("text", PLACEHOLDER_FORMS)
def test_placeholder_form_as_object(text: str) -> None:
    assert "placeholder" in penalties_of(object=text)


@pytest.mark.parametrize("text", PLACEHOLDER_FORMS)
def test_placeholder_form_as_subject(text: str) -> None:
    assert "placeholder" in penalties_of(subject=text)


@pytest.mark.parametrize(
    ("skew", "expected"),
    [
        pytest.param(timedelta(seconds=300), set(), id="future at max skew"),
        pytest.param(timedelta(seconds=301), {"future_timestamp"}, id="future 1 s over"),
        pytest.param(timedelta(hours=-168), set(), id="age at max hours"),
        pytest.param(timedelta(hours=-168, seconds=-1), {"stale_timestamp"}, id="age 1 s over"),
    ],
)
def test_timestamp_boundary(skew: timedelta, expected: set[str]) -> None:
    assert penalties_of(created_at=RECORD_TIME + skew) == expected


def test_rules_all_covered_by_cases() -> None:
    covered = set().union(*(expected for _, _, expected in RULE_CASES))
    covered |= {"bad_source", "placeholder", "future_timestamp", "stale_timestamp"}

    assert covered == {rule.name for rule in RULES}


def test_score_clamped_at_zero() -> None:
    claim = replace(
        GOOD, subject="", object="", sources=(), created_at=RECORD_TIME.replace(year=2100)
    )
    result = score(claim, CONTEXT)

    assert sum(result.penalties.values()) > 1.0
    assert result.value == 0.0


def test_score_penalties_are_rule_penalties() -> None:
    result = score(replace(GOOD, object="n/a", sources=()), CONTEXT)

    assert result.penalties == {"placeholder": 0.5, "no_source": 0.1}
    assert result.value == 0.4


def test_normalize_text_folds_case_and_space() -> None:
    assert scoring.normalize_text("  Lorem\u00a0\tIPSUM  ") == "lorem ipsum"


def test_quality_one_half_penalty_is_low_quality() -> None:
    feed = AgentFeed(cd=ContentDefenseSettings(quality_threshold=0.6))
    decision = feed.send_new(BASE_MS, object="n/a")

    assert decision.score is not None
    assert decision.score.value == 0.5
    assert decision.reasons == (Reason.LOW_QUALITY,)
    assert decision.route is Route.QUARANTINE


def test_quality_no_source_alone_is_accepted() -> None:
    feed = AgentFeed(cd=ContentDefenseSettings(quality_threshold=0.6))
    decision = feed.send_new(BASE_MS, sources=[])

    assert decision.score is not None
    assert decision.score.value == 0.9
    assert decision.reasons == ()
    assert decision.route is Route.ACCEPTED


def test_quality_score_at_threshold_is_accepted() -> None:
    # stale_timestamp (0.2) and no_source (0.1) leave exactly 0.7, which is not below 0.7.
    feed = AgentFeed(cd=ContentDefenseSettings(quality_threshold=0.7))
    created_at = ms_to_datetime(BASE_MS) - timedelta(hours=169)
    decision = feed.send_new(BASE_MS, sources=[], created_at=created_at.isoformat())

    assert decision.score is not None
    assert decision.score.value == 0.7
    assert decision.reasons == ()


def test_junk_multiline_object_is_clean() -> None:
    assert penalties_of(object="Lisbon\nPortugal\tEurope") == set()


def test_junk_control_character_is_junk() -> None:
    assert penalties_of(object="Lisbon\x07Portugal") == {"junk_text"}
