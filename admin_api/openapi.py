"""The OpenAPI 3.1 document of the admin API, served at ``/openapi.json``.

Written by hand next to the handlers. A unit test checks that every route of the
application has an operation here, and that every operation here has a route.
"""

from __future__ import annotations

from typing import Any

from admin_api.read_model.config import THRESHOLD_KEYS
from admin_api.read_model.quarantine import STATUS_CHOICES
from admin_api.validation import (
    DEFAULT_PAGE_LIMIT,
    IDEMPOTENCY_HEADER,
    MAX_BAN_SECONDS,
    MAX_BULK_ITEMS,
    MAX_NOTE_LENGTH,
    MAX_REASON_LENGTH,
)
from schemas.breaker import BreakerState
from schemas.verdict import Reason
from streams import __version__
from streams.settings import GateSettings

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


AGENT_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ITEM_ID = {"type": "string", "pattern": "^q[0-9a-f]{24}$"}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}

WAIT = _query(
    "wait",
    {"type": "boolean", "default": False},
    "Wait for the worker's result and return it (200, 400, 404, 409 or 504) instead of 202.",
)
IDEMPOTENCY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Becomes the command_id. A repeated key is applied once; the repeat "
    "returns the first result. Without it the API makes a uuid4 id.",
}


def _schemas() -> dict[str, Any]:
    text = {"type": "string"}
    nullable_text = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message", "field"],
            "properties": {
                "error": {
                    "type": "string",
                    "enum": [
                        "invalid",
                        "unauthorized",
                        "not_found",
                        "method_not_allowed",
                        "conflict",
                        "too_large",
                        "not_ready",
                        "timeout",
                        "internal",
                    ],
                },
                "message": text,
                "field": {
                    **nullable_text,
                    "description": "Body field, query or path parameter, or header at fault.",
                },
                "command_id": {**text, "description": "Set when a command was published."},
            },
        },
        "Item": {
            "type": "object",
            "properties": {
                "id": ITEM_ID,
                "agent_id": AGENT_ID,
                "assertion_id": text,
                "reason": {**nullable_text, "description": "The first of reasons."},
                "reasons": {"type": "array", "items": text},
                "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
                "quality_score": {"type": ["number", "null"]},
                "score_breakdown": {"type": "object", "additionalProperties": {"type": "number"}},
                "quarantined_at": TIMESTAMP,
                "decided_at": NULLABLE_TIMESTAMP,
                "decided_by": nullable_text,
                "notes": {"type": "array", "items": text},
                "subject": text,
                "predicate": text,
                "object": text,
                "confidence": {"type": "number"},
                "sources": {"type": "array", "items": text},
                "assertion": {"type": "object", "description": "The assertion as signed."},
            },
        },
        "ItemPage": {
            "type": "object",
            "required": ["items", "total", "limit", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("Item")},
                "total": {"type": "integer", "description": "Items matching the filters."},
                "limit": {"type": "integer"},
                "next_cursor": nullable_text,
            },
        },
        "Summary": {
            "type": "object",
            "properties": {
                "total_pending": {"type": "integer"},
                "oldest_pending_at": NULLABLE_TIMESTAMP,
                "oldest_pending_age_seconds": {"type": ["number", "null"]},
                "by_agent": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "agent_id": AGENT_ID,
                            "count": {"type": "integer"},
                            "oldest_pending_at": TIMESTAMP,
                        },
                    },
                },
                "by_reason": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"reason": text, "count": {"type": "integer"}},
                    },
                },
            },
        },
        "Decision": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reason": {**text, "maxLength": MAX_REASON_LENGTH},
                "note": {**text, "maxLength": MAX_NOTE_LENGTH},
            },
        },
        "BulkDecision": {
            "type": "object",
            "additionalProperties": False,
            "description": "Either agent_id (its oldest pending items) or ids.",
            "properties": {
                "agent_id": AGENT_ID,
                "ids": {
                    "type": "array",
                    "items": ITEM_ID,
                    "minItems": 1,
                    "maxItems": MAX_BULK_ITEMS,
                },
                "reason": {**text, "maxLength": MAX_REASON_LENGTH},
                "note": {**text, "maxLength": MAX_NOTE_LENGTH},
            },
        },
        "BulkResult": {
            "type": "object",
            "properties": {
                "command_ids": {"type": "array", "items": text},
                "count": {"type": "integer"},
                "unknown_ids": {"type": "array", "items": ITEM_ID},
                "remaining": {
                    "type": "integer",
                    "description": f"Pending items of the agent beyond the first {MAX_BULK_ITEMS}.",
                },
                "results": {
                    "type": "object",
                    "description": "With wait=true: commands per result.",
                    "additionalProperties": {"type": "integer"},
                },
            },
        },
        "Accepted": {
            "type": "object",
            "properties": {"command_id": text, "status": {"const": "pending"}},
        },
        "Breaker": {
            "type": "object",
            "properties": {
                "schema_version": {"const": 1},
                "agent_id": AGENT_ID,
                "state": {"type": "string", "enum": [state.value for state in BreakerState]},
                "reason": nullable_text,
                "opened_at": NULLABLE_TIMESTAMP,
                "until": NULLABLE_TIMESTAMP,
                "trips": {"type": "integer"},
                "manual": {"type": "boolean"},
            },
        },
        "BreakerPage": {
            "type": "object",
            "properties": {
                "circuit_breakers": {"type": "array", "items": _ref("Breaker")},
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "next_cursor": nullable_text,
            },
        },
        "Thresholds": {
            "type": "object",
            "properties": {
                **{key: {"type": "number"} for key in THRESHOLD_KEYS},
                "updated_by": nullable_text,
                "updated_at": NULLABLE_TIMESTAMP,
            },
        },
        "ThresholdChanges": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {key: {"type": "number"} for key in THRESHOLD_KEYS},
        },
        "AllowlistEntry": {
            "type": "object",
            "properties": {
                "agent_id": AGENT_ID,
                "reason": text,
                "expires_at": NULLABLE_TIMESTAMP,
                "added_by": text,
                "added_at": TIMESTAMP,
                "expired": {"type": "boolean"},
            },
        },
        "Command": {
            "type": "object",
            "properties": {
                "command_id": text,
                "kind": nullable_text,
                "status": {
                    "type": "string",
                    "enum": ["pending", "applied", "not_found", "conflict", "invalid"],
                },
                "issued_by": nullable_text,
                "agent_id": nullable_text,
                "item_id": nullable_text,
                "results": {"type": "array", "items": {"type": "object"}},
            },
        },
    }


def _write(
    summary: str,
    ok_schema: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    body_required: bool = False,
    parameters: list[dict[str, Any]] | None = None,
    not_found: str | None = None,
    conflict: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [*(parameters or []), WAIT, IDEMPOTENCY],
        "responses": {
            "200": _json(ok_schema, "With wait=true: the command was applied."),
            "202": _json(_ref("Accepted"), "The command was published."),
            "400": _error("Invalid input, or the worker found the command invalid."),
            "401": _error("Missing or invalid bearer token."),
            "413": _error("Body larger than admin_api.max_request_bytes."),
            "503": _error("The read model is still loading."),
            "504": _error("With wait=true: no result within admin_api.command_timeout_seconds."),
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": body}},
        }
    if not_found:
        operation["responses"]["404"] = _error(not_found)
    if conflict:
        operation["responses"]["409"] = _error(conflict)
    return operation


def _read(
    summary: str,
    ok_schema: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    not_found: str | None = None,
) -> dict[str, Any]:
    responses = {
        "200": _json(ok_schema, "OK"),
        "400": _error("Invalid query or path parameter."),
        "401": _error("Missing or invalid bearer token."),
        "503": _error("The read model is still loading."),
    }
    if not_found:
        responses["404"] = _error(not_found)
    return {"summary": summary, "parameters": parameters or [], "responses": responses}


def _open(summary: str, description: str) -> dict[str, Any]:
    return {"summary": summary, "security": [], "responses": {"200": {"description": description}}}


CURSOR = _query("cursor", {"type": "string"}, "next_cursor of the previous page.")
ITEM_PATH = _path("id", ITEM_ID, "Quarantine item id.")
AGENT_PATH = _path("agent_id", AGENT_ID, "Agent id (hex Ed25519 public key).")


def _limit(page_limit_max: int) -> dict[str, Any]:
    schema = {
        "type": "integer",
        "minimum": 1,
        "maximum": page_limit_max,
        "default": min(DEFAULT_PAGE_LIMIT, page_limit_max),
    }
    return _query("limit", schema, "Entries per page.")


def _quarantine_paths(limit: dict[str, Any]) -> dict[str, Any]:
    decision = _ref("Decision")
    decided = {
        "type": "object",
        "properties": {
            "command_id": {"type": "string"},
            "result": {"const": "applied"},
            "item": _ref("Item"),
        },
    }
    bulk = _ref("BulkDecision")
    return {
        "/v1/admin/quarantine": {
            "get": _read(
                "List quarantine items, oldest first",
                _ref("ItemPage"),
                [
                    _query("agent_id", AGENT_ID, "Only this agent's items."),
                    _query(
                        "reason",
                        {"type": "string", "enum": [reason.value for reason in Reason]},
                        "Only items whose first reason is this one.",
                    ),
                    _query(
                        "status",
                        {"type": "string", "enum": list(STATUS_CHOICES), "default": "pending"},
                        "Item status, or all.",
                    ),
                    _query(
                        "older_than_seconds",
                        {"type": "number", "minimum": 0},
                        "Only items quarantined at least this many seconds ago.",
                    ),
                    limit,
                    CURSOR,
                ],
            )
        },
        "/v1/admin/quarantine/summary": {
            "get": _read("Count pending items by agent and by reason", _ref("Summary"))
        },
        "/v1/admin/quarantine/{id}": {
            "get": _read("Read one item", _ref("Item"), [ITEM_PATH], "No such item.")
        },
        "/v1/admin/quarantine/{id}/approve": {
            "post": _write(
                "Approve an item: the worker routes it to accepted",
                decided,
                body=decision,
                parameters=[ITEM_PATH],
                not_found="No such item.",
                conflict="The item is already decided.",
            )
        },
        "/v1/admin/quarantine/{id}/reject": {
            "post": _write(
                "Reject an item",
                decided,
                body=decision,
                parameters=[ITEM_PATH],
                not_found="No such item.",
                conflict="The item is already decided.",
            )
        },
        "/v1/admin/quarantine/approve": {
            "post": _write(
                "Approve an agent's pending items or a list of items",
                _ref("BulkResult"),
                body=bulk,
                body_required=True,
                conflict="An Idempotency-Key that names other commands.",
            )
        },
        "/v1/admin/quarantine/reject": {
            "post": _write(
                "Reject an agent's pending items or a list of items",
                _ref("BulkResult"),
                body=bulk,
                body_required=True,
                conflict="An Idempotency-Key that names other commands.",
            )
        },
    }


def _breaker_paths(limit: dict[str, Any]) -> dict[str, Any]:
    return {
        "/v1/admin/circuit_breakers": {
            "get": _read(
                "List breakers in agent id order",
                _ref("BreakerPage"),
                [
                    _query(
                        "state",
                        {"type": "string", "enum": [state.value for state in BreakerState]},
                        "Only breakers in this state.",
                    ),
                    limit,
                    CURSOR,
                ],
            )
        },
        "/v1/admin/circuit_breakers/{agent_id}": {
            "get": _read(
                "Read an agent's breaker; an unknown agent is CLOSED with no trips",
                _ref("Breaker"),
                [AGENT_PATH],
            )
        },
        "/v1/admin/circuit_breakers/{agent_id}/open": {
            "post": _write(
                "Open an agent's breaker by hand (a ban) for a duration",
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "opened"},
                        "agent_id": AGENT_ID,
                        "state": {"const": "OPEN"},
                        "until": TIMESTAMP,
                        "reason": {"type": "string"},
                        "command_id": {"type": "string"},
                    },
                },
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["reason", "duration_seconds"],
                    "properties": {
                        "reason": {"type": "string", "maxLength": MAX_REASON_LENGTH},
                        "duration_seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": MAX_BAN_SECONDS,
                        },
                    },
                },
                body_required=True,
                parameters=[AGENT_PATH],
            )
        },
        "/v1/admin/circuit_breakers/{agent_id}/reset": {
            "post": _write(
                "Reset an agent's breaker to CLOSED and clear its window counts",
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "reset"},
                        "agent_id": AGENT_ID,
                        "state": {"const": "CLOSED"},
                        "command_id": {"type": "string"},
                    },
                },
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"reason": {"type": "string", "maxLength": MAX_REASON_LENGTH}},
                },
                parameters=[AGENT_PATH],
            )
        },
    }


def _content_defense_paths() -> dict[str, Any]:
    thresholds_write = _write(
        "Change thresholds at run time on every partition, without a restart",
        {
            "type": "object",
            "properties": {
                "status": {"const": "applied"},
                "thresholds": {"type": "object"},
                "command_id": {"type": "string"},
            },
        },
        body=_ref("ThresholdChanges"),
        body_required=True,
    )
    return {
        "/v1/admin/content_defense/thresholds": {
            "get": _read("Read the thresholds in force", _ref("Thresholds")),
            "put": thresholds_write,
            "post": thresholds_write,
        },
        "/v1/admin/content_defense/allowlist": {
            "get": _read(
                "List allow-listed agents",
                {
                    "type": "object",
                    "properties": {
                        "allowlist": {"type": "array", "items": _ref("AllowlistEntry")},
                        "total": {"type": "integer"},
                    },
                },
                [
                    _query(
                        "include_expired",
                        {"type": "boolean", "default": False},
                        "Also list entries whose expires_at has passed.",
                    )
                ],
            ),
            "post": _write(
                "Allow-list an agent: it skips content defense until expires_at",
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "added"},
                        "agent_id": AGENT_ID,
                        "expires_at": NULLABLE_TIMESTAMP,
                        "command_id": {"type": "string"},
                    },
                },
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["agent_id", "reason"],
                    "properties": {
                        "agent_id": AGENT_ID,
                        "reason": {"type": "string", "maxLength": MAX_REASON_LENGTH},
                        "expires_at": {
                            **NULLABLE_TIMESTAMP,
                            "description": "RFC 3339 with offset, in the future; null: no expiry.",
                        },
                    },
                },
                body_required=True,
            ),
        },
        "/v1/admin/content_defense/allowlist/{agent_id}": {
            "delete": _write(
                "Remove an agent from the allow-list",
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "removed"},
                        "agent_id": AGENT_ID,
                        "command_id": {"type": "string"},
                    },
                },
                parameters=[AGENT_PATH],
                not_found="The agent is not on the allow-list.",
            )
        },
    }


def _command_and_service_paths() -> dict[str, Any]:
    return {
        "/v1/admin/commands/{command_id}": {
            "get": _read(
                "Read a command's status and results",
                _ref("Command"),
                [_path("command_id", {"type": "string"}, "The command id.")],
                "No command with this id is known.",
            )
        },
        "/healthz": {"get": _open("Liveness", "The process serves requests.")},
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "security": [],
                "responses": {
                    "200": {"description": "The read model caught up and the producer runs."},
                    "503": {"description": "Not ready; problems lists why."},
                },
            }
        },
        "/metrics": {"get": _open("Prometheus metrics", "Text exposition format.")},
        "/openapi.json": {"get": _open("This document", "OpenAPI 3.1 JSON.")},
    }


def openapi_document(settings: GateSettings) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the limits in ``settings``."""
    limit = _limit(settings.admin_api.page_limit_max)
    paths = {
        **_quarantine_paths(limit),
        **_breaker_paths(limit),
        **_content_defense_paths(),
        **_command_and_service_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stemedb-gate admin API",
            "version": __version__,
            "description": "Review quarantined assertions and control the gate. Reads come "
            "from a read model of the gate's compacted state topics; writes publish "
            "commands that the gate worker applies.",
        },
        "servers": [{"url": f"http://{settings.admin_api.host}:{settings.admin_api.port}"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "paths": paths,
    }
