"""``/v1/admin/circuit_breakers``: list and read breakers, open (ban) and reset agents."""

from __future__ import annotations

from aiohttp import web

from admin_api.commands import build_command
from admin_api.read_model.breakers import closed_view
from admin_api.service import accepted, json_response, operator_of, service_of
from admin_api.validation import (
    DEFAULT_PAGE_LIMIT,
    MAX_BAN_SECONDS,
    Body,
    Query,
    command_id_of,
    path_agent_id,
    read_body,
)
from schemas.admin import AdminCommandKind
from schemas.breaker import BreakerState

PREFIX = "/v1/admin/circuit_breakers"

routes = web.RouteTableDef()


@routes.get(PREFIX)
async def list_breakers(request: web.Request) -> web.Response:
    service = service_of(request)
    query = Query(request, ("state", "limit", "cursor"))
    page_limit_max = service.settings.admin_api.page_limit_max
    state = query.choice("state", (state.value for state in BreakerState), None)
    limit = query.integer("limit", min(DEFAULT_PAGE_LIMIT, page_limit_max), 1, page_limit_max)
    page = service.read_model.breakers.page(state, limit, query.text("cursor"))
    return json_response(
        {
            "circuit_breakers": page.entries,
            "total": page.total,
            "limit": limit,
            "next_cursor": page.next_cursor,
        }
    )


@routes.get(PREFIX + "/{agent_id}")
async def get_breaker(request: web.Request) -> web.Response:
    Query(request, ())
    agent_id = path_agent_id(request)
    view = service_of(request).read_model.breakers.get(agent_id)
    return json_response(view if view is not None else closed_view(agent_id))


@routes.post(PREFIX + "/{agent_id}/open")
async def open_breaker(request: web.Request) -> web.Response:
    service = service_of(request)
    agent_id = path_agent_id(request)
    wait = Query(request, ("wait",)).boolean("wait")
    max_bytes = service.settings.admin_api.max_request_bytes
    body = Body(await read_body(request, max_bytes), ("reason", "duration_seconds"))
    reason = body.required_text("reason")
    duration_seconds = body.number(
        "duration_seconds", exclusive_minimum=0.0, maximum=MAX_BAN_SECONDS
    )

    command_id = command_id_of(request)
    command = build_command(
        AdminCommandKind.BREAKER_OPEN,
        command_id=command_id,
        issued_by=operator_of(request),
        agent_id=agent_id,
        reason=reason,
        parameters={"duration_seconds": duration_seconds},
    )
    event = await service.commands.issue(command, wait)
    if event is None:
        return accepted(command_id)
    return json_response(
        {
            "status": "opened",
            "agent_id": agent_id,
            "state": event.detail.get("state", BreakerState.OPEN.value),
            "until": event.detail.get("until"),
            "reason": event.detail.get("reason", reason),
            "command_id": command_id,
        }
    )


@routes.post(PREFIX + "/{agent_id}/reset")
async def reset_breaker(request: web.Request) -> web.Response:
    service = service_of(request)
    agent_id = path_agent_id(request)
    wait = Query(request, ("wait",)).boolean("wait")
    max_bytes = service.settings.admin_api.max_request_bytes
    body = Body(await read_body(request, max_bytes), ("reason",))
    command_id = command_id_of(request)
    command = build_command(
        AdminCommandKind.BREAKER_RESET,
        command_id=command_id,
        issued_by=operator_of(request),
        agent_id=agent_id,
        reason=body.text("reason"),
    )
    event = await service.commands.issue(command, wait)
    if event is None:
        return accepted(command_id)
    return json_response(
        {
            "status": "reset",
            "agent_id": agent_id,
            "state": event.detail.get("state", BreakerState.CLOSED.value),
            "command_id": command_id,
        }
    )
