"""``/v1/admin/content_defense``: thresholds in force and the allow-list."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from admin_api.commands import build_command
from admin_api.errors import InvalidRequest, NotFound
from admin_api.read_model.config import (
    CIRCUIT_BREAKER_KEYS,
    CONTENT_DEFENSE_KEYS,
    THRESHOLD_KEYS,
)
from admin_api.service import accepted, json_response, operator_of, service_of, utc_now
from admin_api.validation import (
    Body,
    Query,
    check_agent_id,
    command_id_of,
    path_agent_id,
    read_body,
)
from schemas.admin import AdminCommandKind
from streams.settings import CircuitBreakerSettings, ContentDefenseSettings

PREFIX = "/v1/admin/content_defense"

routes = web.RouteTableDef()


@routes.get(PREFIX + "/thresholds")
async def get_thresholds(request: web.Request) -> web.Response:
    Query(request, ())
    return json_response(service_of(request).read_model.config.thresholds_view())


@routes.put(PREFIX + "/thresholds")
@routes.post(PREFIX + "/thresholds")
async def set_thresholds(request: web.Request) -> web.Response:
    service = service_of(request)
    wait = Query(request, ("wait",)).boolean("wait")
    data = await read_body(request, service.settings.admin_api.max_request_bytes)
    Body(data, THRESHOLD_KEYS)
    changes = check_thresholds(data, service.read_model.config.current_thresholds())
    command_id = command_id_of(request)
    command = build_command(
        AdminCommandKind.SET_THRESHOLDS,
        command_id=command_id,
        issued_by=operator_of(request),
        parameters=changes,
    )
    events = await service.commands.publish_everywhere(command, wait)
    if not wait:
        return accepted(command_id)
    for event in events:
        service.commands.single_result([event], command_id)
    thresholds = events[0].detail.get("thresholds") if events else None
    if not isinstance(thresholds, dict):
        thresholds = {**service.read_model.config.current_thresholds(), **changes}
    return json_response({"status": "applied", "thresholds": thresholds, "command_id": command_id})


def check_thresholds(
    changes: dict[str, Any], current: dict[str, float | int]
) -> dict[str, float | int]:
    """Check changed thresholds against the settings' bounds, together with the others.

    Returns the changed keys with their values as the settings models type them
    (integers for counts). Raises :class:`InvalidRequest` naming the first key at
    fault.
    """
    if not changes:
        raise InvalidRequest(
            "body", f"give at least one threshold to change: {', '.join(THRESHOLD_KEYS)}"
        )
    for key, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(key, f"{key} must be a number")
    merged = {**current, **changes}
    checked: dict[str, float | int] = {}
    models: tuple[tuple[type[BaseModel], tuple[str, ...]], ...] = (
        (ContentDefenseSettings, CONTENT_DEFENSE_KEYS),
        (CircuitBreakerSettings, CIRCUIT_BREAKER_KEYS),
    )
    for model, keys in models:
        try:
            valid = model(**{key: merged[key] for key in keys})
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["loc"]:
                field = str(error["loc"][0])
            else:
                field = _first_named(error["msg"], [key for key in keys if key in changes])
            raise InvalidRequest(field, f"{field}: {error['msg']}") from None
        for key in keys:
            if key in changes:
                checked[key] = getattr(valid, key)
    return checked


def _first_named(message: str, keys: list[str]) -> str:
    """Return the key that ``message`` names first (a check of several keys has no loc)."""
    positions = {}
    for key in keys:
        found = re.search(rf"\b{re.escape(key)}\b", message)
        if found:
            positions[key] = found.start()
    return min(positions, key=positions.__getitem__) if positions else keys[0]


@routes.get(PREFIX + "/allowlist")
async def list_allowlist(request: web.Request) -> web.Response:
    query = Query(request, ("include_expired",))
    include_expired = query.boolean("include_expired")
    entries = service_of(request).read_model.config.allowlist_view(include_expired, utc_now())
    return json_response({"allowlist": entries, "total": len(entries)})


@routes.post(PREFIX + "/allowlist")
async def add_to_allowlist(request: web.Request) -> web.Response:
    service = service_of(request)
    wait = Query(request, ("wait",)).boolean("wait")
    max_bytes = service.settings.admin_api.max_request_bytes
    body = Body(await read_body(request, max_bytes), ("agent_id", "reason", "expires_at"))
    agent_id = check_agent_id(body.required_text("agent_id"))
    reason = body.required_text("reason")
    expires_at = body.future_timestamp("expires_at", utc_now())
    expires_text = expires_at.isoformat().replace("+00:00", "Z") if expires_at else None

    command_id = command_id_of(request)
    command = build_command(
        AdminCommandKind.ALLOWLIST_ADD,
        command_id=command_id,
        issued_by=operator_of(request),
        agent_id=agent_id,
        reason=reason,
        parameters={"expires_at": expires_text},
    )
    event = await service.commands.issue(command, wait)
    if event is None:
        return accepted(command_id)
    return json_response(
        {
            "status": "added",
            "agent_id": agent_id,
            "expires_at": event.detail.get("expires_at", expires_text),
            "command_id": command_id,
        }
    )


@routes.delete(PREFIX + "/allowlist/{agent_id}")
async def remove_from_allowlist(request: web.Request) -> web.Response:
    service = service_of(request)
    agent_id = path_agent_id(request)
    wait = Query(request, ("wait",)).boolean("wait")
    if agent_id not in service.read_model.config.allowlist:
        raise NotFound(f"agent {agent_id} is not on the allow-list")
    command_id = command_id_of(request)
    command = build_command(
        AdminCommandKind.ALLOWLIST_REMOVE,
        command_id=command_id,
        issued_by=operator_of(request),
        agent_id=agent_id,
    )
    if await service.commands.issue(command, wait) is None:
        return accepted(command_id)
    return json_response({"status": "removed", "agent_id": agent_id, "command_id": command_id})
