"""Operator commands on ``admin-commands`` and their results on ``admin-events``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AdminCommandKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    BREAKER_OPEN = "breaker_open"
    BREAKER_RESET = "breaker_reset"
    ALLOWLIST_ADD = "allowlist_add"
    ALLOWLIST_REMOVE = "allowlist_remove"
    SET_THRESHOLDS = "set_thresholds"
    EXPIRE_STATE = "expire_state"
    """Internal: a sweep request to apply time-based changes on the agent's partition."""


class AdminCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    command_id: str = Field(min_length=1, max_length=200, description="Idempotency key.")
    kind: AdminCommandKind
    agent_id: str | None = Field(None, description="Agent the command is about; the record key.")
    item_id: str | None = Field(None, description="Quarantine item the command is about.")
    reason: str | None = None
    note: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    issued_by: str
    issued_at: datetime


class CommandResult(StrEnum):
    APPLIED = "applied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"


class AdminEventKind(StrEnum):
    COMMAND_RESULT = "command_result"
    BREAKER_TRANSITION = "breaker_transition"
    QUARANTINE_DECISION = "quarantine_decision"


class AdminEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kind: AdminEventKind
    agent_id: str | None = None
    command_id: str | None = None
    result: CommandResult | None = None
    issued_by: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class ThresholdsState(BaseModel):
    """Value of the ``thresholds`` key on ``config-state``: the thresholds in force."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    thresholds: dict[str, float | int]
    updated_by: str | None = None
    updated_at: datetime | None = None
    command_id: str | None = None


class AllowlistEntry(BaseModel):
    """Value of an ``allowlist/<agent_id>`` key on ``config-state``; a tombstone removes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    agent_id: str
    reason: str
    expires_at: datetime | None = None
    added_by: str
    added_at: datetime
