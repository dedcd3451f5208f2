"""Quality score of one assertion: deterministic rules, each subtracting a fixed penalty.

The score starts at 1.0; every rule that applies subtracts its penalty, and the result is
clamped to [0, 1]. A score below ``quality_threshold`` (0.6 by default) is ``LowQuality``,
so one rule with a penalty of 0.5 is enough to quarantine a record, and the small
penalties (no source, an old claim) only matter together with another problem.

Rules, their penalties and the exact conditions are listed in ``RULES`` and in
docs/scoring.md. No rule reads the clock: the caller passes the broker timestamp.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

SUBJECT_MAX_CHARS = 512
OBJECT_MAX_CHARS = 2048
PREDICATE_MAX_CHARS = 128
MAX_SOURCES = 32
SOURCE_MAX_CHARS = 2048
JUNK_MIN_ALNUM_SHARE = 0.5
JUNK_MAX_REPEAT_RUN = 6
ALLOWED_SOURCE_SCHEMES = frozenset({"http", "https", "doi", "urn", "isbn", "arxiv"})

PREDICATE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(?::[a-z][a-z0-9_]*)?$")
PLACEHOLDERS = frozenset(
    {
        "",
        "-",
        "?",
        "??",
        "???",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "undefined",
        "todo",
        "tbd",
        "fixme",
        "xxx",
        "placeholder",
        "lorem ipsum",
        "unknown",
        "test",
        "example",
        "foo",
        "bar",
        "sample",
    }
)


@dataclass(frozen=True)
class ClaimView:
    """The fields the rules read, decoupled from the wire model."""

    subject: str
    predicate: str
    object: str
    confidence: float
    sources: Sequence[str]
    created_at: datetime


@dataclass(frozen=True)
class Rule:
    name: str
    penalty: float
    applies: Callable[[ClaimView, ScoringContext], bool]
    description: str


@dataclass(frozen=True)
class ScoringContext:
    """Inputs a rule may read besides the claim: the broker time and the skew bounds."""

    record_time: datetime
    max_future_skew_seconds: float
    max_age_hours: float


@dataclass(frozen=True)
class Score:
    value: float
    penalties: dict[str, float]


def normalize_text(text: str) -> str:
    """NFKC, case-folded, inner whitespace collapsed: the form duplicates are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _structure(claim: ClaimView, _: ScoringContext) -> bool:
    return (
        not claim.subject.strip()
        or not claim.object.strip()
        or PREDICATE_PATTERN.fullmatch(claim.predicate) is None
    )


def _length(claim: ClaimView, _: ScoringContext) -> bool:
    return (
        len(claim.subject) > SUBJECT_MAX_CHARS
        or len(claim.object) > OBJECT_MAX_CHARS
        or len(claim.predicate) > PREDICATE_MAX_CHARS
    )


def _is_junk(text: str) -> bool:
    stripped = "".join(text.split())
    if not stripped:
        return False  # empty text is the structure rule's finding
    alnum = sum(1 for ch in stripped if ch.isalnum())
    if alnum / len(stripped) < JUNK_MIN_ALNUM_SHARE:
        return True
    if not any(ch.isalpha() or ch.isdigit() for ch in stripped):
        return True
    run = 1
    for previous, current in itertools.pairwise(stripped):
        run = run + 1 if current.casefold() == previous.casefold() else 1
        if run > JUNK_MAX_REPEAT_RUN:
            return True
    # Tabs and newlines are whitespace, not junk: multi-line objects are legitimate.
    return any(
        unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn") and not ch.isspace() for ch in text
    )


def _junk(claim: ClaimView, _: ScoringContext) -> bool:
    return _is_junk(claim.subject) or _is_junk(claim.object)


def _placeholder(claim: ClaimView, _: ScoringContext) -> bool:
    return normalize_text(claim.subject) in PLACEHOLDERS or normalize_text(claim.object) in (
        PLACEHOLDERS
    )


def _is_valid_source(source: str) -> bool:
    if not source or len(source) > SOURCE_MAX_CHARS or any(ch.isspace() for ch in source):
        return False
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    if parts.scheme.lower() not in ALLOWED_SOURCE_SCHEMES:
        return False
    if parts.scheme.lower() in ("http", "https"):
        return bool(parts.hostname)
    return bool(parts.path)


def _bad_sources(claim: ClaimView, _: ScoringContext) -> bool:
    return len(claim.sources) > MAX_SOURCES or not all(_is_valid_source(s) for s in claim.sources)


def _no_sources(claim: ClaimView, _: ScoringContext) -> bool:
    return len(claim.sources) == 0


def _self_reference(claim: ClaimView, _: ScoringContext) -> bool:
    subject = normalize_text(claim.subject)
    return bool(subject) and subject == normalize_text(claim.object)


def _future(claim: ClaimView, ctx: ScoringContext) -> bool:
    skew = (claim.created_at - ctx.record_time).total_seconds()
    return skew > ctx.max_future_skew_seconds


def _stale(claim: ClaimView, ctx: ScoringContext) -> bool:
    age = (ctx.record_time - claim.created_at).total_seconds()
    return age > ctx.max_age_hours * 3600.0


RULES: tuple[Rule, ...] = (
    Rule("structure", 1.0, _structure, "empty subject or object, or predicate not snake_case"),
    Rule("length", 0.5, _length, "subject, predicate or object over its length bound"),
    Rule("junk_text", 0.5, _junk, "mostly symbols, long repeated runs, or control characters"),
    Rule("placeholder", 0.5, _placeholder, "subject or object is a placeholder such as n/a, TODO"),
    Rule("bad_source", 0.5, _bad_sources, "a source is not an absolute URI of an allowed scheme"),
    Rule("no_source", 0.1, _no_sources, "no source given"),
    Rule("self_reference", 0.5, _self_reference, "subject and object are the same text"),
    Rule("future_timestamp", 0.5, _future, "created_at lies after the broker time beyond skew"),
    Rule("stale_timestamp", 0.2, _stale, "created_at lies before the broker time beyond max age"),
)


def score(claim: ClaimView, ctx: ScoringContext) -> Score:
    """Apply every rule and return the clamped score with the penalty of each rule that applied."""
    penalties = {rule.name: rule.penalty for rule in RULES if rule.applies(claim, ctx)}
    value = max(0.0, min(1.0, 1.0 - sum(penalties.values())))
    return Score(round(value, 6), penalties)
