"""Step 1 of the gate: turn a record's key and value into a valid, verified assertion.

Every failure is a :class:`DecodeFailure` with the dead-letter kind, a message and the
field path where one applies. Nothing here raises on bad input.
"""

from __future__ import annotations

import json
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


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, item in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = item
    return seen


def _first_duplicate_key(value: bytes) -> str | None:
    """Return the first key that an object of ``value`` repeats; ``value`` is valid JSON."""
    try:
        json.loads(value, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as exc:
        return exc.key
    return None


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

    # orjson rejects invalid UTF-8, lone surrogates, NaN and Infinity. It keeps the last
    # of duplicate keys silently, and parsers in other languages keep the first, so
    # one signed record could mean two things: duplicates are rejected separately.
    try:
        fields = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return DecodeFailure(InvalidKind.DECODE_ERROR, f"value is not UTF-8 JSON: {exc}")
    try:
        duplicate = _first_duplicate_key(value)
    except RecursionError:
        return DecodeFailure(InvalidKind.DECODE_ERROR, "JSON nesting is too deep")
    if duplicate is not None:
        return DecodeFailure(
            InvalidKind.DECODE_ERROR, f"JSON object has the key {duplicate!r} twice", duplicate
        )
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
