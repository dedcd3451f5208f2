"""Step 1 of the gate: turn a record's key and value into a valid, verified assertion.

Every failure is a :class:`DecodeFailure` with the dead-letter kind, a message and the
field path where one applies. Nothing here raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import signing
from schemas.assertion import Assertion
from schemas.invalid import InvalidKind


@dataclass(frozen=True)
class Decoded:
    assertion: Assertion
    fields: dict[str, Any]
    """The JSON object as sent, which the signature covers and the outputs carry."""


@dataclass(frozen=True)
class DecodeFailure:
    kind: InvalidKind
    message: str
    field: str | None = None


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "$"


def decode(
    key: bytes | None, value: bytes | None, *, max_bytes: int, require_signatures: bool
) -> Decoded | DecodeFailure:
    if value is None:
        return DecodeFailure(InvalidKind.NULL_VALUE, "record value is null (a tombstone)")
    if not key:
        return DecodeFailure(InvalidKind.MISSING_KEY, "record has no key; the key must be agent_id")
    if len(value) > max_bytes:
        return DecodeFailure(
            InvalidKind.TOO_LARGE, f"record value is {len(value)} bytes, over the {max_bytes} limit"
        )

    try:
        fields = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return DecodeFailure(InvalidKind.DECODE_ERROR, f"value is not UTF-8 JSON: {exc}")
    if not isinstance(fields, dict):
        return DecodeFailure(
            InvalidKind.SCHEMA_ERROR,
            f"value must be a JSON object, got {type(fields).__name__}",
            "$",
        )

    try:
        assertion = Assertion.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _field_path(first["loc"])
        return DecodeFailure(
            InvalidKind.SCHEMA_ERROR,
            f"field {path!r}: {first['msg']} ({exc.error_count()} error(s))",
            path,
        )

    key_text = key.decode("utf-8", errors="replace")
    if key_text != assertion.agent_id:
        return DecodeFailure(
            InvalidKind.KEY_MISMATCH,
            f"record key {key_text[:80]!r} differs from agent_id {assertion.agent_id!r}",
            "agent_id",
        )
    if require_signatures and not signing.verify(fields):
        return DecodeFailure(
            InvalidKind.BAD_SIGNATURE,
            "signature does not verify against agent_id over the canonical JSON",
            "signature",
        )
    return Decoded(assertion, fields)
