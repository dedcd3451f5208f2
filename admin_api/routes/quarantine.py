"""``/v1/admin/quarantine``: list, summarize, read, approve and reject items."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from admin_api.commands import build_command
from admin_api.errors import CommandTimeout, InvalidRequest, NotFound
from admin_api.read_model.quarantine import STATUS_CHOICES, ItemFilter, StoredItem
from admin_api.service import (
    AdminService,
    accepted,
    json_response,
    operator_of,
    service_of,
    utc_now,
)
from admin_api.validation import (
    DEFAULT_PAGE_LIMIT,
    MAX_BULK_ITEMS,
    MAX_NOTE_LENGTH,
    Body,
    Query,
    check_agent_id,
    check_item_id,
    command_id_of,
    path_item_id,
    read_body,
)
from schemas.admin import AdminCommandKind, AdminEvent, CommandResult
from schemas.quarantine import QuarantineStatus
from schemas.verdict import Reason

PREFIX = "/v1/admin/quarantine"
# Seconds a waiting approve or reject waits, after the result arrived, for
# quarantine-state to show the decided item. After that the response shows the item
# with the status from the result.
ITEM_UPDATE_WAIT_SECONDS = 2.0
# Length of ":" plus an item id, which bulk command ids append to the Idempotency-Key.
BULK_SUFFIX_LENGTH = 26

routes = web.RouteTableDef()


@routes.get(PREFIX)
async def list_items(request: web.Request) -> web.Response:
    service = service_of(request)
    query = Query(
        request, ("agent_id", "reason", "status", "older_than_seconds", "limit", "cursor")
    )
    page_limit_max = service.settings.admin_api.page_limit_max
    limit = query.integer("limit", min(DEFAULT_PAGE_LIMIT, page_limit_max), 1, page_limit_max)
    item_filter = ItemFilter(
        status=query.choice("status", STATUS_CHOICES, QuarantineStatus.PENDING.value),
        agent_id=query.agent_id(),
        reason=query.choice("reason", (reason.value for reason in Reason), None),
        older_than_seconds=query.number("older_than_seconds"),
    )
    page = service.read_model.quarantine.page(item_filter, limit, query.text("cursor"), utc_now())
    return json_response(
        {
            "items": page.entries,
            "total": page.total,
            "limit": limit,
            "next_cursor": page.next_cursor,
        }
    )


@routes.get(PREFIX + "/summary")
async def summary(request: web.Request) -> web.Response:
    Query(request, ())
    return json_response(service_of(request).read_model.quarantine.summary(utc_now()))


@routes.get(PREFIX + "/{id}")
async def get_item(request: web.Request) -> web.Response:
    Query(request, ())
    item_id = path_item_id(request)
    return json_response(_known_item(service_of(request), item_id).view)


@routes.post(PREFIX + "/approve")
async def bulk_approve(request: web.Request) -> web.Response:
    return await _decide_many(request, AdminCommandKind.APPROVE)


@routes.post(PREFIX + "/reject")
async def bulk_reject(request: web.Request) -> web.Response:
    return await _decide_many(request, AdminCommandKind.REJECT)


@routes.post(PREFIX + "/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    return await _decide_one(request, AdminCommandKind.APPROVE)


@routes.post(PREFIX + "/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    return await _decide_one(request, AdminCommandKind.REJECT)


def _known_item(service: AdminService, item_id: str) -> StoredItem:
    stored = service.read_model.quarantine.get(item_id)
    if stored is None:
        raise NotFound(f"quarantine item {item_id!r} not found")
    return stored


async def _decide_one(request: web.Request, kind: AdminCommandKind) -> web.Response:
    service = service_of(request)
    item_id = path_item_id(request)
    wait = Query(request, ("wait",)).boolean("wait")
    max_bytes = service.settings.admin_api.max_request_bytes
    body = Body(await read_body(request, max_bytes), ("reason", "note"))
    reason = body.text("reason")
    note = body.text("note", MAX_NOTE_LENGTH)
    command_id = command_id_of(request)
    # The item's agent keys the command, so an item the read model lacks cannot be sent.
    stored = _known_item(service, item_id)
    command = build_command(
        kind,
        command_id=command_id,
        issued_by=operator_of(request),
        agent_id=stored.agent_id,
        item_id=item_id,
        reason=reason,
        note=note,
    )
    event = await service.commands.issue(command, wait)
    if event is None:
        return accepted(command_id)
    item = await _item_after_decision(service, item_id, event)
    return json_response(
        {"command_id": command_id, "result": CommandResult.APPLIED.value, "item": item}
    )


async def _item_after_decision(
    service: AdminService, item_id: str, event: AdminEvent
) -> dict[str, Any]:
    """Return the item view once quarantine-state shows it decided.

    The result event and the item's update arrive on different topics, in either
    order. If the update takes longer than :data:`ITEM_UPDATE_WAIT_SECONDS`, the read
    model's view is returned with the status, decider and time of the result event.
    """
    quarantine = service.read_model.quarantine
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ITEM_UPDATE_WAIT_SECONDS
    while True:
        stored = _known_item(service, item_id)
        if stored.status != QuarantineStatus.PENDING.value:
            return stored.view
        # No await between the check above and watch(), so no update can slip between.
        watch = quarantine.watch(item_id)
        try:
            async with asyncio.timeout_at(deadline):
                await watch
        except TimeoutError:
            break
        finally:
            quarantine.unwatch(item_id, watch)
    view = dict(_known_item(service, item_id).view)
    detail = event.detail
    view["status"] = detail.get("status", view["status"])
    view["decided_by"] = detail.get("decided_by") or event.issued_by
    view["decided_at"] = detail.get("decided_at") or event.at.isoformat()
    return view


async def _decide_many(request: web.Request, kind: AdminCommandKind) -> web.Response:
    service = service_of(request)
    wait = Query(request, ("wait",)).boolean("wait")
    body = Body(
        await read_body(request, service.settings.admin_api.max_request_bytes),
        ("agent_id", "ids", "reason", "note"),
    )
    reason = body.text("reason")
    note = body.text("note", MAX_NOTE_LENGTH)
    batch_id = command_id_of(request, BULK_SUFFIX_LENGTH)

    # 1. Resolve the items: an agent's oldest pending ones, or the listed ids.
    quarantine = service.read_model.quarantine
    unknown_ids: list[str] = []
    remaining = 0
    if ("agent_id" in body) == ("ids" in body):
        raise InvalidRequest("agent_id", "give either agent_id or ids, not both and not neither")
    if "agent_id" in body:
        agent_id = _body_agent_id(body.data["agent_id"])
        pending = quarantine.page(ItemFilter(agent_id=agent_id), MAX_BULK_ITEMS, None, utc_now())
        items = [(view["id"], view["agent_id"]) for view in pending.entries]
        remaining = pending.total - len(items)
    else:
        items = []
        for item_id in _body_ids(body.data["ids"]):
            stored = quarantine.get(item_id)
            if stored is None:
                unknown_ids.append(item_id)
            else:
                items.append((item_id, stored.agent_id))

    # 2. One command per item, each id derived from the batch id and the item id, so
    # a retry with the same Idempotency-Key repeats the same command ids.
    operator = operator_of(request)
    commands = [
        build_command(
            kind,
            command_id=f"{batch_id}:{item_id}",
            issued_by=operator,
            agent_id=agent_id,
            item_id=item_id,
            reason=reason,
            note=note,
        )
        for item_id, agent_id in items
    ]
    response: dict[str, Any] = {
        "command_ids": [command.command_id for command in commands],
        "count": len(commands),
        "unknown_ids": unknown_ids,
        "remaining": remaining,
    }
    if not wait:
        if commands:
            await service.commands.publish(commands)
        return json_response(response, status=202)

    # 3. Wait for every result and count them; unknown ids count as not_found.
    events = await service.commands.publish_and_wait(commands) if commands else []
    counts = {result.value: 0 for result in CommandResult}
    counts[CommandResult.NOT_FOUND.value] += len(unknown_ids)
    unanswered = 0
    for event in events:
        if event is None or event.result is None:
            unanswered += 1
        else:
            counts[event.result.value] += 1
    response["results"] = counts
    if unanswered:
        raise CommandTimeout(
            f"{unanswered} of {len(commands)} commands got no result from the gate worker "
            f"within {service.commands.timeout_seconds:g} s; they stay queued",
            extra={**response, "pending": unanswered},
        )
    return json_response(response)


def _body_agent_id(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("agent_id", "agent_id must be a string")
    return check_agent_id(value)


def _body_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BULK_ITEMS:
        raise InvalidRequest("ids", f"ids must be a list of 1 to {MAX_BULK_ITEMS} item ids")
    ids: dict[str, None] = {}
    for index, item_id in enumerate(value):
        field = f"ids[{index}]"
        if not isinstance(item_id, str):
            raise InvalidRequest(field, f"{field} must be a string")
        ids[check_item_id(item_id, field)] = None
    return list(ids)
