"""Decoding one record: each dead-letter kind, and a valid signed assertion."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.invalid import InvalidKind
from streams.decode import Decoded, DecodeFailure, decode

from .factories import agent_key, assertion_fields

MAX_BYTES = 65_536


def record(**overrides: Any) -> tuple[bytes, bytes]:
    """Return the key and value of a signed assertion record, with field ``overrides``."""
    fields = assertion_fields(**overrides)
    return fields["agent_id"].encode(), orjson.dumps(fields)


def decode_record(
    key: bytes | None,
    value: bytes | None,
    *,
    max_bytes: int = MAX_BYTES,
    require_signatures: bool = True,
) -> Decoded | DecodeFailure:
    return decode(key, value, max_bytes=max_bytes, require_signatures=require_signatures)


def failure(key: bytes | None, value: bytes | None, **options: Any) -> DecodeFailure:
    result = decode_record(key, value, **options)
    assert isinstance(result, DecodeFailure), result
    return result


def test_decode_valid() -> None:
    key, value = record(subject="Lyon")
    result = decode_record(key, value)

    assert isinstance(result, Decoded)
    assert result.assertion.subject == "Lyon"
    assert result.assertion.agent_id == key.decode()
    assert result.fields == orjson.loads(value)


def test_decode_null_value() -> None:
    key, _ = record()

    assert failure(key, None).kind is InvalidKind.NULL_VALUE


@pytest.mark.parametrize("key", [None, b""], ids=["none", "empty"])
def test_decode_missing_key(key: bytes | None) -> None:
    _, value = record()

    assert failure(key, value).kind is InvalidKind.MISSING_KEY


def test_decode_too_large() -> None:
    key, value = record()
    result = failure(key, value, max_bytes=len(value) - 1)

    assert result.kind is InvalidKind.TOO_LARGE
    assert str(len(value)) in result.message


def test_decode_at_max_bytes() -> None:
    key, value = record()

    assert isinstance(decode_record(key, value, max_bytes=len(value)), Decoded)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"not-json", id="not json"),
        pytest.param(b'{"subject": "Lyon', id="truncated"),
        pytest.param(b'{"subject": "\xff\xfe"}', id="not utf-8"),
        pytest.param(b'{"confidence": NaN}', id="NaN literal"),
        pytest.param(b'{"confidence": 1e999}', id="overflows to infinity"),
    ],
)
def test_decode_error(value: bytes) -> None:
    key, _ = record()

    assert failure(key, value).kind is InvalidKind.DECODE_ERROR


@pytest.mark.parametrize(
    "value",
    [b"[1, 2]", b'"text"', b"42", b"null"],
    ids=["array", "string", "number", "null"],
)
def test_decode_not_an_object(value: bytes) -> None:
    key, _ = record()
    result = failure(key, value)

    assert result.kind is InvalidKind.SCHEMA_ERROR
    assert result.field == "$"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"confidence": "high"}, "confidence", id="confidence high"),
        pytest.param({"confidence": 1.5}, "confidence", id="confidence over 1"),
        pytest.param({"created_at": "2024-05-01T12:00:00"}, "created_at", id="naive created_at"),
        pytest.param({"created_at": "yesterday"}, "created_at", id="created_at not a date"),
        pytest.param({"sources": "https://example.org"}, "sources", id="sources not a list"),
        pytest.param({"schema_version": 2}, "schema_version", id="unknown schema version"),
        pytest.param({"colour": "blue"}, "colour", id="unknown field"),
    ],
)
def test_decode_schema_error(overrides: dict[str, Any], field: str) -> None:
    key, value = record(**overrides)
    result = failure(key, value)

    assert result.kind is InvalidKind.SCHEMA_ERROR
    assert result.field == field
    assert field in result.message


def test_decode_missing_field() -> None:
    fields = assertion_fields()
    del fields["subject"]
    result = failure(fields["agent_id"].encode(), orjson.dumps(fields))

    assert result.kind is InvalidKind.SCHEMA_ERROR
    assert result.field == "subject"


def test_decode_key_mismatch() -> None:
    _, value = record()
    other_agent = assertion_fields(agent_key(2))["agent_id"].encode()
    result = failure(other_agent, value)

    assert result.kind is InvalidKind.KEY_MISMATCH
    assert result.field == "agent_id"


def test_decode_bad_signature() -> None:
    fields = assertion_fields(subject="Lyon")
    fields["subject"] = "Marseille"
    result = failure(fields["agent_id"].encode(), orjson.dumps(fields))

    assert result.kind is InvalidKind.BAD_SIGNATURE
    assert result.field == "signature"


def test_decode_bad_signature_allowed_when_not_required() -> None:
    fields = assertion_fields(subject="Lyon")
    fields["subject"] = "Marseille"
    result = decode_record(
        fields["agent_id"].encode(), orjson.dumps(fields), require_signatures=False
    )

    assert isinstance(result, Decoded)
    assert result.assertion.subject == "Marseille"


def test_decode_reordered_keys_verify() -> None:
    # The signature covers canonical JSON, so the order of keys on the wire does not matter.
    fields = assertion_fields()
    reordered = dict(reversed(list(fields.items())))
    result = decode_record(fields["agent_id"].encode(), orjson.dumps(reordered))

    assert isinstance(result, Decoded)


def test_decode_non_ascii_text_verifies() -> None:
    key, value = record(subject="Zürich", object="Schweiz 🇨🇭")
    result = decode_record(key, value)

    assert isinstance(result, Decoded)
    assert result.assertion.subject == "Zürich"
