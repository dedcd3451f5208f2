"""The read model's indexes, pages, summaries and command status, fed by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from admin_api.errors import InvalidRequest
from admin_api.read_model import ReadModel
from admin_api.read_model.quarantine import ItemFilter
from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, AdminEventKind
from schemas.breaker import BreakerSnapshot, BreakerState
from schemas.quarantine import QuarantineStatus
from schemas.verdict import Reason
from streams.topics import (
    ADMIN_COMMANDS,
    ADMIN_EVENTS,
    BREAKER_STATE,
    CONFIG_STATE,
    QUARANTINE_STATE,
)
from tests.unit.admin_api.conftest import (
    BASE_TIME,
    add_breaker,
    add_items,
    agent_id,
    make_item,
)

NOW = BASE_TIME + timedelta(hours=1)


def _ids(entries: list[dict[str, object]]) -> list[object]:
    return [entry["id"] for entry in entries]


def _all_pages(model: ReadModel, item_filter: ItemFilter, limit: int) -> list[object]:
    seen: list[object] = []
    cursor = None
    for _ in range(1000):
        page = model.quarantine.page(item_filter, limit, cursor, NOW)
        seen.extend(_ids(page.entries))
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def test_page_oldest_first_with_cursor(read_model: ReadModel) -> None:
    """Items added out of order come back oldest first over pages of 3, each once."""
    items = [make_item(1, at=BASE_TIME + timedelta(seconds=s)) for s in (5, 1, 9, 3, 7, 2, 8)]
    add_items(read_model, items)
    expected = [item.id for item in sorted(items, key=lambda item: item.quarantined_at)]

    first = read_model.quarantine.page(ItemFilter(), 3, None, NOW)

    assert _ids(first.entries) == expected[:3]
    assert first.total == 7
    assert first.next_cursor is not None
    assert _all_pages(read_model, ItemFilter(), 3) == expected


def test_page_last_page_has_no_cursor(read_model: ReadModel) -> None:
    add_items(read_model, [make_item(1) for _ in range(4)])

    page = read_model.quarantine.page(ItemFilter(), 4, None, NOW)

    assert len(page.entries) == 4
    assert page.next_cursor is None


def test_page_same_time_ordered_by_id(read_model: ReadModel) -> None:
    """Items quarantined in the same microsecond are ordered by id and none is skipped."""
    items = [make_item(n, at=BASE_TIME) for n in range(1, 6)]
    add_items(read_model, items)

    assert _all_pages(read_model, ItemFilter(), 2) == sorted(item.id for item in items)


def test_page_filters(read_model: ReadModel) -> None:
    """Agent, first reason, status and age filter alone and together."""
    old = BASE_TIME
    recent = NOW - timedelta(seconds=10)
    a1_low_old = make_item(1, reasons=[Reason.LOW_QUALITY], at=old)
    a1_dup_old = make_item(1, reasons=[Reason.DUPLICATE, Reason.LOW_QUALITY], at=old)
    a1_low_new = make_item(1, reasons=[Reason.LOW_QUALITY], at=recent)
    a2_low_old = make_item(2, reasons=[Reason.LOW_QUALITY], at=old)
    a2_approved = make_item(2, status=QuarantineStatus.APPROVED, at=old)
    add_items(read_model, [a1_low_old, a1_dup_old, a1_low_new, a2_low_old, a2_approved])
    page = read_model.quarantine.page

    by_agent = page(ItemFilter(agent_id=agent_id(1)), 100, None, NOW)
    by_reason = page(ItemFilter(reason="LowQuality"), 100, None, NOW)
    both = page(ItemFilter(agent_id=agent_id(1), reason="LowQuality"), 100, None, NOW)
    old_only = page(ItemFilter(older_than_seconds=60), 100, None, NOW)
    approved = page(ItemFilter(status="approved"), 100, None, NOW)
    everything = page(ItemFilter(status="all"), 100, None, NOW)
    unknown_agent = page(ItemFilter(agent_id=agent_id(99)), 100, None, NOW)

    assert set(_ids(by_agent.entries)) == {a1_low_old.id, a1_dup_old.id, a1_low_new.id}
    assert set(_ids(by_reason.entries)) == {a1_low_old.id, a1_low_new.id, a2_low_old.id}
    assert set(_ids(both.entries)) == {a1_low_old.id, a1_low_new.id}
    assert both.total == 2
    assert set(_ids(old_only.entries)) == {a1_low_old.id, a1_dup_old.id, a2_low_old.id}
    assert old_only.total == 3
    assert _ids(approved.entries) == [a2_approved.id]
    assert everything.total == 5
    assert unknown_agent.total == 0


def test_page_combined_filters_paginate(read_model: ReadModel) -> None:
    """With agent and reason both set, pages still cover every match exactly once."""
    matching = [make_item(1, reasons=[Reason.DUPLICATE]) for _ in range(7)]
    add_items(read_model, matching)
    add_items(read_model, [make_item(1) for _ in range(5)])
    add_items(read_model, [make_item(2, reasons=[Reason.DUPLICATE]) for _ in range(9)])

    item_filter = ItemFilter(agent_id=agent_id(1), reason="Duplicate")

    assert _all_pages(read_model, item_filter, 3) == [item.id for item in matching]
    assert read_model.quarantine.page(item_filter, 3, None, NOW).total == 7


def test_status_change_moves_item(read_model: ReadModel) -> None:
    item = make_item(1)
    add_items(read_model, [item])

    add_items(read_model, [item.model_copy(update={"status": QuarantineStatus.REJECTED})])

    assert read_model.quarantine.count("pending") == 0
    assert read_model.quarantine.count("rejected") == 1
    assert read_model.quarantine.count("all") == 1
    assert read_model.quarantine.summary(NOW)["by_agent"] == []


def test_tombstone_removes_item(read_model: ReadModel) -> None:
    item = make_item(1)
    add_items(read_model, [item])

    read_model.apply(QUARANTINE_STATE, item.id.encode(), None)

    assert read_model.quarantine.get(item.id) is None
    assert read_model.quarantine.count("all") == 0


def test_invalid_cursor_names_field(read_model: ReadModel) -> None:
    add_items(read_model, [make_item(1)])

    with pytest.raises(InvalidRequest) as raised:
        read_model.quarantine.page(ItemFilter(), 10, "not-a-cursor!", NOW)

    assert raised.value.field == "cursor"


def test_summary_counts_and_oldest(read_model: ReadModel) -> None:
    oldest = make_item(2, reasons=[Reason.DUPLICATE], at=BASE_TIME)
    add_items(read_model, [oldest])
    add_items(read_model, [make_item(1, at=BASE_TIME + timedelta(minutes=m)) for m in (1, 2, 3)])
    add_items(read_model, [make_item(3, status=QuarantineStatus.APPROVED)])

    summary = read_model.quarantine.summary(NOW)

    assert summary["total_pending"] == 4
    assert summary["oldest_pending_at"] == "2026-02-11T10:00:00Z"
    assert summary["oldest_pending_age_seconds"] == 3600.0
    assert [(e["agent_id"], e["count"]) for e in summary["by_agent"]] == [
        (agent_id(1), 3),
        (agent_id(2), 1),
    ]
    assert summary["by_agent"][0]["oldest_pending_at"] == "2026-02-11T10:01:00Z"
    assert summary["by_reason"] == [
        {"reason": "LowQuality", "count": 3},
        {"reason": "Duplicate", "count": 1},
    ]


def test_summary_empty(read_model: ReadModel) -> None:
    summary = read_model.quarantine.summary(NOW)

    assert summary["total_pending"] == 0
    assert summary["oldest_pending_at"] is None
    assert summary["oldest_pending_age_seconds"] is None


def test_item_view_fields(read_model: ReadModel) -> None:
    item = make_item(1, reasons=[Reason.UNTRUSTED_HIGH_CONFIDENCE, Reason.LOW_QUALITY])
    add_items(read_model, [item])

    view = read_model.quarantine.items[item.id].view

    assert set(view) == {
        "id", "agent_id", "assertion_id", "reason", "reasons", "status", "quality_score",
        "score_breakdown", "quarantined_at", "decided_at", "decided_by", "notes", "subject",
        "predicate", "object", "confidence", "sources", "assertion",
    }  # fmt: skip
    assert view["reason"] == "UntrustedHighConfidence"
    assert view["assertion_id"] == item.assertion["id"]
    assert view["object"] == "n/a"


async def test_watch_resolves_on_change(read_model: ReadModel) -> None:
    item = make_item(1)
    add_items(read_model, [item])
    watch = read_model.quarantine.watch(item.id)

    add_items(read_model, [item.model_copy(update={"status": QuarantineStatus.APPROVED})])
    stored = await asyncio.wait_for(watch, 1.0)

    assert stored.status == "approved"


def test_breakers_page_by_state(read_model: ReadModel) -> None:
    for n, state in ((3, BreakerState.OPEN), (1, BreakerState.CLOSED), (2, BreakerState.OPEN)):
        add_breaker(read_model, BreakerSnapshot(agent_id=agent_id(n), state=state, trips=1))

    everything = read_model.breakers.page(None, 2, None)
    rest = read_model.breakers.page(None, 2, everything.next_cursor)
    opened = read_model.breakers.page("OPEN", 10, None)

    assert [e["agent_id"] for e in everything.entries] == [agent_id(1), agent_id(2)]
    assert [e["agent_id"] for e in rest.entries] == [agent_id(3)]
    assert rest.next_cursor is None
    assert everything.total == 3
    assert [e["agent_id"] for e in opened.entries] == [agent_id(2), agent_id(3)]


def test_breaker_state_change_and_tombstone(read_model: ReadModel) -> None:
    add_breaker(read_model, BreakerSnapshot(agent_id=agent_id(1), state=BreakerState.OPEN))
    add_breaker(read_model, BreakerSnapshot(agent_id=agent_id(1), state=BreakerState.CLOSED))

    assert read_model.breakers.count("OPEN") == 0
    assert read_model.breakers.count("CLOSED") == 1

    read_model.apply(BREAKER_STATE, agent_id(1).encode(), None)

    assert read_model.breakers.get(agent_id(1)) is None


def test_allowlist_expiry_and_removal(read_model: ReadModel) -> None:
    def entry(n: int, expires_at: datetime | None) -> bytes:
        return orjson.dumps(
            {
                "agent_id": agent_id(n),
                "reason": "backfill",
                "expires_at": expires_at.isoformat() if expires_at else None,
                "added_by": "alice",
                "added_at": BASE_TIME.isoformat(),
            }
        )

    now = datetime.now(UTC)
    read_model.apply(CONFIG_STATE, f"allowlist/{agent_id(1)}".encode(), entry(1, None))
    read_model.apply(
        CONFIG_STATE, f"allowlist/{agent_id(2)}".encode(), entry(2, now - timedelta(hours=1))
    )
    read_model.apply(
        CONFIG_STATE, f"allowlist/{agent_id(3)}".encode(), entry(3, now + timedelta(hours=1))
    )
    read_model.apply(CONFIG_STATE, f"allowlist/{agent_id(3)}".encode(), None)

    live = read_model.config.allowlist_view(False, now)
    every = read_model.config.allowlist_view(True, now)

    assert [e["agent_id"] for e in live] == [agent_id(1)]
    assert [(e["agent_id"], e["expired"]) for e in every] == [
        (agent_id(1), False),
        (agent_id(2), True),
    ]


def test_thresholds_view_overlays_defaults(read_model: ReadModel) -> None:
    state = {
        "thresholds": {"quality_threshold": 0.5, "min_requests": 40},
        "updated_by": "alice",
        "updated_at": "2026-02-11T10:00:00Z",
    }
    read_model.apply(CONFIG_STATE, b"thresholds", orjson.dumps(state))

    view = read_model.config.thresholds_view()

    assert view["quality_threshold"] == 0.5
    assert view["min_requests"] == 40
    assert view["confidence_threshold"] == 0.85
    assert view["updated_by"] == "alice"
    assert view["updated_at"] == "2026-02-11T10:00:00Z"


def _command(kind: AdminCommandKind, command_id: str = "c1") -> bytes:
    command = AdminCommand(
        command_id=command_id,
        kind=kind,
        agent_id=agent_id(1),
        issued_by="alice",
        issued_at=BASE_TIME,
    )
    return orjson.dumps(command.model_dump(mode="json"))


def _result(result: str, command_id: str = "c1", **detail: object) -> bytes:
    event = AdminEvent(
        kind=AdminEventKind.COMMAND_RESULT,
        command_id=command_id,
        result=result,
        issued_by="alice",
        detail=dict(detail),
        at=BASE_TIME,
    )
    return orjson.dumps(event.model_dump(mode="json"))


def test_command_status_pending_then_result(read_model: ReadModel) -> None:
    read_model.apply(ADMIN_COMMANDS, b"k", _command(AdminCommandKind.BREAKER_RESET))
    record = read_model.commands.get("c1")
    assert record is not None
    assert record.status == "pending"

    read_model.apply(ADMIN_EVENTS, b"k", _result("applied", state="CLOSED"))
    read_model.apply(ADMIN_EVENTS, b"k", _result("applied", state="CLOSED", duplicate=True))

    view = record.view()
    assert view["status"] == "applied"
    assert view["kind"] == "breaker_reset"
    assert view["issued_by"] == "alice"
    assert view["results"] == [{"result": "applied", "state": "CLOSED"}]


def test_thresholds_status_needs_every_partition(read_model: ReadModel) -> None:
    """set_thresholds is applied once all 3 partitions reported; repeats are ignored."""
    read_model.apply(ADMIN_COMMANDS, b"thresholds", _command(AdminCommandKind.SET_THRESHOLDS))
    record = read_model.commands.get("c1")
    assert record is not None

    read_model.apply(ADMIN_EVENTS, b"t", _result("applied", partition=0))
    read_model.apply(ADMIN_EVENTS, b"t", _result("applied", partition=0, duplicate=True))
    read_model.apply(ADMIN_EVENTS, b"t", _result("applied", partition=1))
    assert record.status == "pending"

    read_model.apply(ADMIN_EVENTS, b"t", _result("applied", partition=2))
    assert record.status == "applied"
    assert len(record.details) == 3


def test_non_applied_result_is_status(read_model: ReadModel) -> None:
    read_model.apply(ADMIN_EVENTS, b"k", _result("conflict", command_id="c2", status="approved"))

    record = read_model.commands.get("c2")
    assert record is not None
    assert record.status == "conflict"
    assert record.kind is None


def test_sweeper_commands_not_recorded(read_model: ReadModel) -> None:
    read_model.apply(ADMIN_COMMANDS, b"k", _command(AdminCommandKind.EXPIRE_STATE, "expire/1"))

    assert read_model.commands.get("expire/1") is None


def test_command_log_forgets_oldest(read_model: ReadModel) -> None:
    read_model.commands.max_kept = 2
    for number in range(3):
        read_model.apply(ADMIN_EVENTS, b"k", _result("applied", command_id=f"c{number}"))

    assert read_model.commands.get("c0") is None
    assert read_model.commands.get("c2") is not None


def test_invalid_records_counted_and_skipped(
    read_model: ReadModel, caplog: pytest.LogCaptureFixture
) -> None:
    read_model.apply(QUARANTINE_STATE, b"q1", b"not json")
    read_model.apply(QUARANTINE_STATE, b"q2", b'{"id": "q2"}')
    read_model.apply(CONFIG_STATE, b"unknown-key", b"{}")
    add_items(read_model, [make_item(1)])

    assert read_model.invalid_records == {QUARANTINE_STATE: 2, CONFIG_STATE: 1}
    assert read_model.quarantine.count("pending") == 1
    assert "skipping an invalid" in caplog.text


@pytest.mark.parametrize("cursor", ["%", "abc$", "=" * 4])
def test_breaker_cursor_invalid(read_model: ReadModel, cursor: str) -> None:
    """Characters outside base64url are a 400 on cursor, not dropped."""
    add_breaker(read_model, BreakerSnapshot(agent_id=agent_id(1), state=BreakerState.OPEN))

    with pytest.raises(InvalidRequest) as raised:
        read_model.breakers.page(None, 10, cursor)

    assert raised.value.field == "cursor"
