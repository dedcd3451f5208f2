"""Wire records of the gate as pydantic v2 models. Every record is JSON with ``schema_version``."""

from schemas.admin import (
    AdminCommand,
    AdminCommandKind,
    AdminEvent,
    AdminEventKind,
    AllowlistEntry,
    CommandResult,
    ThresholdsState,
)
from schemas.assertion import Assertion
from schemas.breaker import BreakerSnapshot, BreakerState
from schemas.invalid import InvalidKind, InvalidRecord
from schemas.quarantine import QuarantineItem, QuarantineStatus, quarantine_item_id
from schemas.verdict import Reason, Review, Route, RoutedAssertion, Verdict

__all__ = [
    "AdminCommand",
    "AdminCommandKind",
    "AdminEvent",
    "AdminEventKind",
    "AllowlistEntry",
    "Assertion",
    "BreakerSnapshot",
    "BreakerState",
    "CommandResult",
    "InvalidKind",
    "InvalidRecord",
    "QuarantineItem",
    "QuarantineStatus",
    "Reason",
    "Review",
    "Route",
    "RoutedAssertion",
    "ThresholdsState",
    "Verdict",
    "quarantine_item_id",
]
