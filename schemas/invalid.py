"""Dead letters: records the gate could not decide, with the reason and the original bytes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class InvalidKind(StrEnum):
    DECODE_ERROR = "decode_error"
    SCHEMA_ERROR = "schema_error"
    TOO_LARGE = "too_large"
    NULL_VALUE = "null_value"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    BAD_SIGNATURE = "bad_signature"
    INTERNAL_ERROR = "internal_error"


class InvalidRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kind: InvalidKind
    message: str
    field: str | None = Field(None, description="Dotted path of the failing field, if any.")
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None = Field(None, description="Record key as text (invalid UTF-8 replaced).")
    original_base64: str | None = Field(None, description="Original value bytes, base64.")
    detected_at: datetime
