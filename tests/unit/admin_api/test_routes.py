"""Every route over HTTP against a read model filled by hand and a fake worker."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka.errors import KafkaConnectionError

from admin_api.app import create_app
from admin_api.openapi import openapi_document
from schemas.admin import AdminCommandKind
from schemas.breaker import BreakerSnapshot, BreakerState
from schemas.quarantine import QuarantineStatus
from schemas.verdict import Reason
from streams.settings import GateSettings
from streams.topics import CONFIG_STATE
from tests.unit.admin_api.conftest import (
    Api,
    FakeWorker,
    add_breaker,
    add_items,
    agent_id,
    make_item,
)

Q = "/v1/admin/quarantine"
CB = "/v1/admin/circuit_breakers"
THRESHOLDS = "/v1/admin/content_defense/thresholds"
ALLOWLIST = "/v1/admin/content_defense/allowlist"


def _allowlist(api: Api, n: int) -> None:
    entry = {
        "agent_id": agent_id(n),
        "reason": "backfill",
        "expires_at": None,
        "added_by": "alice",
        "added_at": "2026-02-11T10:00:00Z",
    }
    api.read_model.apply(CONFIG_STATE, f"allowlist/{agent_id(n)}".encode(), orjson.dumps(entry))


def _silent(_: Any) -> None:
    return None


# -- quarantine reads -----------------------------------------------------------------


async def test_list_items_shape_and_pages(api: Api) -> None:
    items = [make_item(1) for _ in range(5)]
    add_items(api.read_model, items)

    status, first = await api.call("GET", f"{Q}?limit=2")
    _, second = await api.call("GET", f"{Q}?limit=2&cursor={first['next_cursor']}")

    assert status == 200
    assert set(first) == {"items", "total", "limit", "next_cursor"}
    assert first["total"] == 5
    assert first["limit"] == 2
    assert [i["id"] for i in first["items"] + second["items"]] == [i.id for i in items[:4]]


async def test_list_items_filters(api: Api) -> None:
    add_items(api.read_model, [make_item(1), make_item(2, reasons=[Reason.DUPLICATE])])
    add_items(api.read_model, [make_item(2, status=QuarantineStatus.REJECTED)])

    _, by_agent = await api.call("GET", f"{Q}?agent_id={agent_id(2)}")
    _, by_reason = await api.call("GET", f"{Q}?reason=Duplicate")
    _, rejected = await api.call("GET", f"{Q}?status=rejected")
    _, everything = await api.call("GET", f"{Q}?status=all")
    _, old = await api.call("GET", f"{Q}?older_than_seconds=0")

    assert by_agent["total"] == 1
    assert by_reason["items"][0]["reason"] == "Duplicate"
    assert rejected["items"][0]["status"] == "rejected"
    assert everything["total"] == 3
    assert old["total"] == 2


async def test_list_items_default_limit_capped(api_settings: GateSettings, api: Api) -> None:
    add_items(api.read_model, [make_item(1) for _ in range(120)])

    _, body = await api.call("GET", Q)

    assert body["limit"] == 100
    assert len(body["items"]) == 100
    assert body["total"] == 120


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("status=open", "status"),
        ("reason=Spam", "reason"),
        ("agent_id=8f3a2b1c", "agent_id"),
        ("older_than_seconds=-1", "older_than_seconds"),
        ("older_than_seconds=nan", "older_than_seconds"),
        ("cursor=%25%25", "cursor"),
        ("agent=1", "agent"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_list_items_bad_query_names_field(api: Api, query: str, field: str) -> None:
    status, body = await api.call("GET", f"{Q}?{query}")

    assert status == 400
    assert body["error"] == "invalid"
    assert body["field"] == field


async def test_summary(api: Api) -> None:
    add_items(api.read_model, [make_item(1), make_item(1), make_item(2)])

    status, body = await api.call("GET", f"{Q}/summary")

    assert status == 200
    assert body["total_pending"] == 3
    assert body["by_agent"][0] == {
        "agent_id": agent_id(1),
        "count": 2,
        "oldest_pending_at": body["oldest_pending_at"],
    }
    assert body["by_reason"] == [{"reason": "LowQuality", "count": 3}]


async def test_get_item(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call("GET", f"{Q}/{item.id}")

    assert status == 200
    assert body["id"] == item.id
    assert body["status"] == "pending"


async def test_get_item_unknown_404_malformed_400(api: Api) -> None:
    missing_status, missing = await api.call("GET", f"{Q}/q{'0' * 24}")
    bad_status, bad = await api.call("GET", f"{Q}/not-an-id")

    assert missing_status == 404
    assert missing["error"] == "not_found"
    assert bad_status == 400
    assert bad["field"] == "id"


# -- approve and reject ---------------------------------------------------------------


async def test_approve_without_wait_is_202(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call(
        "POST", f"{Q}/{item.id}/approve", json={"reason": "fine", "note": "checked"}
    )

    assert status == 202
    assert body["status"] == "pending"
    command = api.worker.commands[0]
    assert command.command_id == body["command_id"]
    assert command.kind is AdminCommandKind.APPROVE
    assert command.agent_id == agent_id(1)
    assert command.item_id == item.id
    assert (command.reason, command.note) == ("fine", "checked")


async def test_approve_wait_returns_decided_item(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call("POST", f"{Q}/{item.id}/approve?wait=true")

    assert status == 200
    assert body["result"] == "applied"
    assert body["item"]["status"] == "approved"
    assert body["item"]["decided_by"] == "alice"


async def test_reject_wait_returns_decided_item(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call("POST", f"{Q}/{item.id}/reject?wait=true", json={})

    assert status == 200
    assert body["item"]["status"] == "rejected"


async def test_decided_item_is_409_with_command_id(api: Api) -> None:
    item = make_item(1, status=QuarantineStatus.APPROVED)
    add_items(api.read_model, [item])

    status, body = await api.call("POST", f"{Q}/{item.id}/reject?wait=true")

    assert status == 409
    assert body["error"] == "conflict"
    assert body["command_id"] == api.worker.commands[0].command_id


async def test_unknown_item_is_404_and_not_published(api: Api) -> None:
    status, _body = await api.call("POST", f"{Q}/q{'1' * 24}/approve?wait=true")

    assert status == 404
    assert api.worker.commands == []


async def test_worker_not_found_is_404(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    api.worker.respond = lambda command: ("not_found", {"item_id": command.item_id})

    status, body = await api.call("POST", f"{Q}/{item.id}/approve?wait=true")

    assert status == 404
    assert body["command_id"] == api.worker.commands[0].command_id


async def test_worker_invalid_is_400(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    api.worker.respond = lambda command: ("invalid", {"error": "item belongs to another agent"})

    status, body = await api.call("POST", f"{Q}/{item.id}/approve?wait=true")

    assert status == 400
    assert body["message"] == "item belongs to another agent"
    assert body["field"] == "body"


async def test_silent_worker_is_504(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    api.worker.respond = _silent

    status, body = await api.call("POST", f"{Q}/{item.id}/approve?wait=true")

    assert status == 504
    assert body["error"] == "timeout"
    assert body["command_id"] == api.worker.commands[0].command_id


async def test_kafka_failure_is_503_with_command_id(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    api.worker.failure = KafkaConnectionError("broker down")

    status, body = await api.call(
        "POST", f"{Q}/{item.id}/approve?wait=true", headers={"Idempotency-Key": "k-503"}
    )

    assert status == 503
    assert body["error"] == "not_ready"
    assert body["command_id"] == "k-503"
    assert "retry with the same Idempotency-Key" in body["message"]


async def test_idempotency_key_repeat_returns_first_result(api: Api) -> None:
    """The same key twice publishes one command id and both calls get 200."""
    item = make_item(1)
    add_items(api.read_model, [item])
    headers = {"Idempotency-Key": "review-42"}

    first_status, first = await api.call(
        "POST", f"{Q}/{item.id}/approve?wait=true", headers=headers
    )
    again_status, again = await api.call(
        "POST", f"{Q}/{item.id}/approve?wait=true", headers=headers
    )

    assert (first_status, again_status) == (200, 200)
    assert first["command_id"] == again["command_id"] == "review-42"
    assert {command.command_id for command in api.worker.commands} == {"review-42"}
    assert again["item"]["status"] == "approved"


async def test_idempotency_key_reused_for_other_command_is_409(api: Api) -> None:
    first, second = make_item(1), make_item(1)
    add_items(api.read_model, [first, second])
    headers = {"Idempotency-Key": "review-43"}

    await api.call("POST", f"{Q}/{first.id}/approve", headers=headers)
    status, body = await api.call("POST", f"{Q}/{second.id}/approve", headers=headers)

    assert status == 409
    assert body["field"] == "Idempotency-Key"
    assert len(api.worker.commands) == 1


@pytest.mark.parametrize("key", ["", "x" * 201, "has space"])
async def test_bad_idempotency_key_is_400(api: Api, key: str) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call(
        "POST", f"{Q}/{item.id}/approve", headers={"Idempotency-Key": key}
    )

    assert status == 400
    assert body["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"reason": 5}', "reason"),
        (b'{"reason": "  "}', "reason"),
        (b'{"note": "' + b"x" * 5001 + b'"}', "note"),
        (b'{"reasn": "typo"}', "reasn"),
    ],
)
async def test_decision_bad_body_names_field(api: Api, body: bytes, field: str) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, response = await api.call("POST", f"{Q}/{item.id}/approve", data=body)

    assert status == 400
    assert response["field"] == field
    assert api.worker.commands == []


async def test_body_over_limit_is_413(api_settings: GateSettings, api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    oversized = orjson.dumps({"note": "x" * api_settings.admin_api.max_request_bytes})

    status, body = await api.call("POST", f"{Q}/{item.id}/approve", data=oversized)

    assert status == 413
    assert body["error"] == "too_large"


async def test_bad_wait_value_is_400(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, body = await api.call("POST", f"{Q}/{item.id}/approve?wait=maybe")

    assert status == 400
    assert body["field"] == "wait"


# -- bulk -----------------------------------------------------------------------------


async def test_bulk_reject_by_agent(api: Api) -> None:
    own = [make_item(7) for _ in range(4)]
    add_items(api.read_model, [*own, make_item(8)])

    status, body = await api.call(
        "POST", f"{Q}/reject?wait=true", json={"agent_id": agent_id(7), "reason": "flooding"}
    )

    assert status == 200
    assert body["count"] == 4
    assert body["results"]["applied"] == 4
    assert body["remaining"] == 0
    assert {c.item_id for c in api.worker.commands} == {item.id for item in own}
    assert api.read_model.quarantine.count("pending") == 1


async def test_bulk_approve_by_ids_counts_each_result(api: Api) -> None:
    pending, decided = make_item(1), make_item(2, status=QuarantineStatus.REJECTED)
    add_items(api.read_model, [pending, decided])
    unknown = f"q{'2' * 24}"

    status, body = await api.call(
        "POST",
        f"{Q}/approve?wait=true",
        json={"ids": [pending.id, decided.id, unknown, pending.id]},
    )

    assert status == 200
    assert body["count"] == 2
    assert body["unknown_ids"] == [unknown]
    assert body["results"]["applied"] == 1
    assert body["results"]["conflict"] == 1
    assert body["results"]["not_found"] == 1


async def test_bulk_without_wait_is_202_with_ids(api: Api) -> None:
    items = [make_item(1), make_item(1)]
    add_items(api.read_model, items)

    status, body = await api.call(
        "POST",
        f"{Q}/approve",
        json={"ids": [item.id for item in items]},
        headers={"Idempotency-Key": "batch-1"},
    )

    assert status == 202
    assert body["command_ids"] == [f"batch-1:{item.id}" for item in items]


async def test_bulk_by_agent_caps_and_reports_remaining(api: Api) -> None:
    from admin_api.routes import quarantine

    add_items(api.read_model, [make_item(3) for _ in range(5)])
    original = quarantine.MAX_BULK_ITEMS
    quarantine.MAX_BULK_ITEMS = 3
    try:
        status, body = await api.call("POST", f"{Q}/approve", json={"agent_id": agent_id(3)})
    finally:
        quarantine.MAX_BULK_ITEMS = original

    assert status == 202
    assert body["count"] == 3
    assert body["remaining"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "agent_id"),
        ({"agent_id": agent_id(1), "ids": [f"q{'0' * 24}"]}, "agent_id"),
        ({"agent_id": "abc"}, "agent_id"),
        ({"ids": []}, "ids"),
        ({"ids": "q0"}, "ids"),
        ({"ids": [f"q{'0' * 24}", 7]}, "ids[1]"),
        ({"ids": [f"q{'0' * 24}", "bad"]}, "ids[1]"),
        ({"ids": [f"q{'0' * 24}"], "reason": ["x"]}, "reason"),
        ({"ids": [f"q{'0' * 24}"], "extra": 1}, "extra"),
    ],
)
async def test_bulk_bad_body_names_field(api: Api, body: dict[str, Any], field: str) -> None:
    status, response = await api.call("POST", f"{Q}/reject", json=body)

    assert status == 400
    assert response["field"] == field


async def test_bulk_silent_worker_is_504_with_counts(api: Api) -> None:
    add_items(api.read_model, [make_item(1)])
    api.worker.respond = _silent

    status, body = await api.call("POST", f"{Q}/approve?wait=true", json={"agent_id": agent_id(1)})

    assert status == 504
    assert body["pending"] == 1
    assert body["results"]["applied"] == 0


# -- circuit breakers -----------------------------------------------------------------


async def test_list_breakers_and_filter(api: Api) -> None:
    add_breaker(api.read_model, BreakerSnapshot(agent_id=agent_id(1), state=BreakerState.OPEN))
    add_breaker(api.read_model, BreakerSnapshot(agent_id=agent_id(2), state=BreakerState.CLOSED))

    status, body = await api.call("GET", CB)
    _, opened = await api.call("GET", f"{CB}?state=OPEN")

    assert status == 200
    assert set(body) == {"circuit_breakers", "total", "limit", "next_cursor"}
    assert body["total"] == 2
    assert [b["agent_id"] for b in opened["circuit_breakers"]] == [agent_id(1)]


@pytest.mark.parametrize(("query", "field"), [("state=open", "state"), ("limit=-1", "limit")])
async def test_list_breakers_bad_query(api: Api, query: str, field: str) -> None:
    status, body = await api.call("GET", f"{CB}?{query}")

    assert status == 400
    assert body["field"] == field


async def test_get_breaker_known_unknown_malformed(api: Api) -> None:
    add_breaker(
        api.read_model,
        BreakerSnapshot(agent_id=agent_id(1), state=BreakerState.OPEN, trips=2, manual=True),
    )

    _, known = await api.call("GET", f"{CB}/{agent_id(1)}")
    unknown_status, unknown = await api.call("GET", f"{CB}/{agent_id(2)}")
    bad_status, bad = await api.call("GET", f"{CB}/8f3a2b1c")

    assert known["state"] == "OPEN"
    assert known["trips"] == 2
    assert unknown_status == 200
    assert (unknown["state"], unknown["trips"]) == ("CLOSED", 0)
    assert bad_status == 400
    assert bad["field"] == "agent_id"


async def test_open_breaker_wait(api: Api) -> None:
    status, body = await api.call(
        "POST",
        f"{CB}/{agent_id(1)}/open?wait=true",
        json={"reason": "flooding_quarantine", "duration_seconds": 3600},
    )

    assert status == 200
    assert body["status"] == "opened"
    assert body["state"] == "OPEN"
    assert body["agent_id"] == agent_id(1)
    assert body["until"] is not None
    command = api.worker.commands[0]
    assert command.parameters == {"duration_seconds": 3600.0}
    assert command.reason == "flooding_quarantine"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_seconds": 60}, "reason"),
        ({"reason": "x"}, "duration_seconds"),
        ({"reason": "x", "duration_seconds": 0}, "duration_seconds"),
        ({"reason": "x", "duration_seconds": 31_536_001}, "duration_seconds"),
        ({"reason": "x", "duration_seconds": "60"}, "duration_seconds"),
        ({"reason": "x", "duration_seconds": True}, "duration_seconds"),
        ({"reason": "x", "duration_seconds": 60, "until": "later"}, "until"),
    ],
)
async def test_open_breaker_bad_body(api: Api, body: dict[str, Any], field: str) -> None:
    status, response = await api.call("POST", f"{CB}/{agent_id(1)}/open", json=body)

    assert status == 400
    assert response["field"] == field


async def test_open_breaker_malformed_agent(api: Api) -> None:
    status, body = await api.call(
        "POST", f"{CB}/XYZ/open", json={"reason": "x", "duration_seconds": 1}
    )

    assert status == 400
    assert body["field"] == "agent_id"


async def test_reset_breaker(api: Api) -> None:
    accepted_status, accepted = await api.call("POST", f"{CB}/{agent_id(1)}/reset")
    status, body = await api.call(
        "POST", f"{CB}/{agent_id(1)}/reset?wait=true", json={"reason": "fixed"}
    )

    assert accepted_status == 202
    assert accepted["status"] == "pending"
    assert status == 200
    assert body == {
        "status": "reset",
        "agent_id": agent_id(1),
        "state": "CLOSED",
        "command_id": body["command_id"],
    }


# -- thresholds -----------------------------------------------------------------------


async def test_get_thresholds_defaults(api: Api) -> None:
    status, body = await api.call("GET", THRESHOLDS)

    assert status == 200
    assert body["quality_threshold"] == 0.6
    assert body["confidence_threshold"] == 0.85
    assert body["untrusted_confidence_threshold"] == 0.95
    assert body["duplicate_lookback_hours"] == 48
    assert body["failure_rate_threshold"] == 0.3
    assert body["min_requests"] == 20
    assert body["updated_by"] is None


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_set_thresholds_reaches_every_partition(api: Api, method: str) -> None:
    status, body = await api.call(
        method, f"{THRESHOLDS}?wait=true", json={"quality_threshold": 0.5, "min_requests": 30}
    )

    assert status == 200
    assert body["status"] == "applied"
    assert body["thresholds"]["quality_threshold"] == 0.5
    assert len(api.worker.commands) == 3
    assert api.worker.commands[0].parameters == {"quality_threshold": 0.5, "min_requests": 30}
    record = api.read_model.commands.get(body["command_id"])
    assert record is not None
    assert record.status == "applied"


async def test_set_thresholds_without_wait_is_202(api: Api) -> None:
    status, body = await api.call("PUT", THRESHOLDS, json={"half_open_probes": 3})

    assert status == 202
    assert body["status"] == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"qualty_threshold": 0.5}, "qualty_threshold"),
        ({"quality_threshold": 1.5}, "quality_threshold"),
        ({"quality_threshold": "0.5"}, "quality_threshold"),
        ({"min_requests": 2.5}, "min_requests"),
        ({"require_signatures": False}, "require_signatures"),
        ({"max_timeout_seconds": 10}, "max_timeout_seconds"),
        ({"timeout_seconds": 10, "max_timeout_seconds": 5}, "max_timeout_seconds"),
    ],
)
async def test_set_thresholds_bad_body(api: Api, body: dict[str, Any], field: str) -> None:
    status, response = await api.call("PUT", THRESHOLDS, json=body)

    assert status == 400
    assert response["field"] == field
    assert api.worker.commands == []


async def test_set_thresholds_worker_invalid_is_400(api: Api) -> None:
    api.worker.respond = lambda command: ("invalid", {"error": "rejected by worker"})

    status, body = await api.call("PUT", f"{THRESHOLDS}?wait=true", json={"min_requests": 30})

    assert status == 400
    assert body["message"] == "rejected by worker"


# -- allow-list -----------------------------------------------------------------------


async def test_allowlist_add_wait(api: Api) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    status, body = await api.call(
        "POST",
        f"{ALLOWLIST}?wait=true",
        json={
            "agent_id": agent_id(4),
            "reason": "backfill_operation",
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
        },
    )

    assert status == 200
    assert body["status"] == "added"
    assert body["agent_id"] == agent_id(4)
    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert api.worker.commands[0].parameters["expires_at"] == body["expires_at"]


async def test_allowlist_add_without_expiry(api: Api) -> None:
    status, _body = await api.call(
        "POST", ALLOWLIST, json={"agent_id": agent_id(4), "reason": "trusted pipeline"}
    )

    assert status == 202
    assert api.worker.commands[0].parameters == {"expires_at": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x"}, "agent_id"),
        ({"agent_id": "8f3a2b1c...", "reason": "x"}, "agent_id"),
        ({"agent_id": agent_id(1)}, "reason"),
        ({"agent_id": agent_id(1), "reason": "x", "expires_at": "tomorrow"}, "expires_at"),
        (
            {"agent_id": agent_id(1), "reason": "x", "expires_at": "2030-01-01T00:00:00"},
            "expires_at",
        ),
        (
            {"agent_id": agent_id(1), "reason": "x", "expires_at": "2020-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"agent_id": agent_id(1), "reason": "x", "expires_at": 1}, "expires_at"),
    ],
)
async def test_allowlist_add_bad_body(api: Api, body: dict[str, Any], field: str) -> None:
    status, response = await api.call("POST", ALLOWLIST, json=body)

    assert status == 400
    assert response["field"] == field


async def test_allowlist_list(api: Api) -> None:
    _allowlist(api, 2)
    _allowlist(api, 1)

    status, body = await api.call("GET", f"{ALLOWLIST}?include_expired=false")

    assert status == 200
    assert body["total"] == 2
    assert [e["agent_id"] for e in body["allowlist"]] == [agent_id(1), agent_id(2)]
    assert body["allowlist"][0]["added_by"] == "alice"


async def test_allowlist_remove(api: Api) -> None:
    _allowlist(api, 1)

    status, body = await api.call("DELETE", f"{ALLOWLIST}/{agent_id(1)}?wait=true")

    assert status == 200
    assert body == {"status": "removed", "agent_id": agent_id(1), "command_id": body["command_id"]}


async def test_allowlist_remove_unknown_404_malformed_400(api: Api) -> None:
    missing_status, _ = await api.call("DELETE", f"{ALLOWLIST}/{agent_id(9)}")
    bad_status, bad = await api.call("DELETE", f"{ALLOWLIST}/nope")

    assert missing_status == 404
    assert bad_status == 400
    assert bad["field"] == "agent_id"
    assert api.worker.commands == []


# -- command status -------------------------------------------------------------------


async def test_command_status_pending_then_applied(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])
    api.worker.respond = _silent
    _, accepted = await api.call("POST", f"{Q}/{item.id}/approve")
    command_id = accepted["command_id"]

    _, pending = await api.call("GET", f"/v1/admin/commands/{command_id}")
    api.worker.respond = None
    await api.call(
        "POST", f"{Q}/{item.id}/approve?wait=true", headers={"Idempotency-Key": command_id}
    )
    _, applied = await api.call("GET", f"/v1/admin/commands/{command_id}")

    assert pending["status"] == "pending"
    assert pending["kind"] == "approve"
    assert pending["issued_by"] == "alice"
    assert applied["status"] == "applied"
    assert applied["results"][0]["result"] == "applied"


async def test_command_status_with_colon_and_slash(api: Api) -> None:
    add_items(api.read_model, [item := make_item(1)])
    await api.call(
        "POST", f"{Q}/approve", json={"ids": [item.id]}, headers={"Idempotency-Key": "a/b"}
    )

    status, body = await api.call("GET", f"/v1/admin/commands/a/b:{item.id}")

    assert status == 200
    assert body["item_id"] == item.id


async def test_command_status_unknown_404(api: Api) -> None:
    status, body = await api.call("GET", "/v1/admin/commands/never-sent")

    assert status == 404
    assert body["error"] == "not_found"


# -- service routes -------------------------------------------------------------------


async def test_healthz_and_readyz(api: Api) -> None:
    health_status, health = await api.call("GET", "/healthz", auth=False)
    ready_status, ready = await api.call("GET", "/readyz", auth=False)

    assert (health_status, health) == (200, {"status": "ok"})
    assert (ready_status, ready) == (200, {"ready": True, "problems": []})


async def test_not_ready_is_503(api: Api) -> None:
    api.read_model.ready = False

    ready_status, ready = await api.call("GET", "/readyz", auth=False)
    status, body = await api.call("GET", Q)

    assert ready_status == 503
    assert ready["problems"] == ["read model not loaded"]
    assert status == 503
    assert body["error"] == "not_ready"


async def test_metrics_counts_requests_and_read_model(api: Api) -> None:
    add_items(api.read_model, [make_item(1), make_item(2, status=QuarantineStatus.APPROVED)])
    await api.call("GET", f"{Q}/q{'0' * 24}")

    status, text = await api.call("GET", "/metrics", auth=False)
    lines = text.decode().splitlines()

    assert status == 200
    assert "stemedb_quarantine_pending 1.0" in lines
    assert "stemedb_quarantine_approved_total 1.0" in lines
    assert "stemedb_quarantine_rejected_total 0.0" in lines
    assert (
        'stemedb_admin_api_requests_total{method="GET",route="/v1/admin/quarantine/{id}",'
        'status="404"} 1.0'
    ) in lines


async def test_wrong_method_is_405_json(api: Api) -> None:
    status, body = await api.call("DELETE", Q)

    assert status == 405
    assert body["error"] == "method_not_allowed"


def _template(path: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)


def test_openapi_covers_every_route(api_settings: GateSettings) -> None:
    """Each route of the app has an operation in the document, and each operation a route."""
    app = create_app(api_settings, sink=FakeWorker.__new__(FakeWorker))
    routed = {
        (route.method.lower(), _template(route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    document = openapi_document(api_settings)
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }

    assert document["openapi"] == "3.1.0"
    assert routed == documented


async def test_openapi_served(api: Api) -> None:
    status, body = await api.call("GET", "/openapi.json", auth=False)

    assert status == 200
    assert "/v1/admin/quarantine/{id}/approve" in body["paths"]


def test_app_uses_request_size_limit(api_settings: GateSettings) -> None:
    app = create_app(api_settings, sink=FakeWorker.__new__(FakeWorker))

    assert isinstance(app, web.Application)
    assert app._client_max_size == api_settings.admin_api.max_request_bytes
