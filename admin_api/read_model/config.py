"""Thresholds in force and the allow-list, from ``config-state``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.admin import AllowlistEntry, ThresholdsState
from streams.settings import CircuitBreakerSettings, ContentDefenseSettings, GateSettings

CONTENT_DEFENSE_KEYS = (
    "quality_threshold",
    "confidence_threshold",
    "untrusted_confidence_threshold",
    "duplicate_lookback_hours",
    "max_future_skew_seconds",
    "max_age_hours",
    "trust_min_reviews",
    "trust_min_approval_ratio",
)
CIRCUIT_BREAKER_KEYS = (
    "failure_rate_threshold",
    "min_requests",
    "timeout_seconds",
    "max_timeout_seconds",
    "max_submissions_per_minute",
    "half_open_probes",
    "half_open_max_seconds",
)
THRESHOLD_KEYS = CONTENT_DEFENSE_KEYS + CIRCUIT_BREAKER_KEYS
THRESHOLDS_KEY = "thresholds"
ALLOWLIST_PREFIX = "allowlist/"


def default_thresholds(settings: GateSettings) -> dict[str, float | int]:
    """Return the runtime-changeable thresholds as the settings file sets them."""
    content: ContentDefenseSettings = settings.content_defense
    breaker: CircuitBreakerSettings = settings.circuit_breaker
    values: dict[str, float | int] = {}
    for key in CONTENT_DEFENSE_KEYS:
        values[key] = getattr(content, key)
    for key in CIRCUIT_BREAKER_KEYS:
        values[key] = getattr(breaker, key)
    return values


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ConfigIndex:
    """The latest ``thresholds`` record and the live allow-list entries."""

    def __init__(self, settings: GateSettings) -> None:
        self.defaults = default_thresholds(settings)
        self.thresholds_state: ThresholdsState | None = None
        self.allowlist: dict[str, AllowlistEntry] = {}

    def thresholds_view(self) -> dict[str, Any]:
        """Return every threshold in force, flat, plus who changed them last and when."""
        values: dict[str, Any] = dict(self.defaults)
        state = self.thresholds_state
        if state is not None:
            values.update({k: v for k, v in state.thresholds.items() if k in self.defaults})
        dumped = state.model_dump(mode="json") if state is not None else {}
        values["updated_by"] = dumped.get("updated_by")
        values["updated_at"] = dumped.get("updated_at")
        return values

    def current_thresholds(self) -> dict[str, float | int]:
        view = self.thresholds_view()
        return {key: view[key] for key in THRESHOLD_KEYS}

    def allowlist_view(self, include_expired: bool, now: datetime) -> list[dict[str, Any]]:
        """Return allow-list entries in agent id order, without expired ones unless asked."""
        entries = []
        for agent_id in sorted(self.allowlist):
            entry = self.allowlist[agent_id]
            expired = entry.expires_at is not None and _aware(entry.expires_at) <= now
            if expired and not include_expired:
                continue
            entries.append({**entry.model_dump(mode="json"), "expired": expired})
        return entries
