"""Wire records of the gate as pydantic v2 models. Every record is JSON with ``schema_version``."""

from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, AdminEventKind, CommandResult
from schemas.assertion import Assertion
from schemas.breaker import BreakerSnapshot, BreakerState
from schemas.invalid import InvalidKind, InvalidRecord
from schemas.quarantine import QuarantineItem, QuarantineStatus
from schemas.verdict import Reason, Route, RoutedAssertion, Verdict

__all__ = [
    "AdminCommand",
    "AdminCommandKind",
    "AdminEvent",
    "AdminEventKind",
    "Assertion",
    "BreakerSnapshot",
    "BreakerState",
    "CommandResult",
    "InvalidKind",
    "InvalidRecord",
    "QuarantineItem",
    "QuarantineStatus",
    "Reason",
    "Route",
    "RoutedAssertion",
    "Verdict",
]
