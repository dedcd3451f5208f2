"""``/v1/admin/commands/{command_id}``: the status of a command by its id."""

from __future__ import annotations

from aiohttp import web

from admin_api.errors import NotFound
from admin_api.service import json_response, service_of
from admin_api.validation import Query

routes = web.RouteTableDef()


# Command ids may contain "/" (an Idempotency-Key can), so the parameter spans segments.
@routes.get("/v1/admin/commands/{command_id:.+}")
async def get_command(request: web.Request) -> web.Response:
    Query(request, ())
    command_id = request.match_info["command_id"]
    record = service_of(request).read_model.commands.get(command_id)
    if record is None:
        raise NotFound(f"command {command_id!r} not found")
    return json_response(record.view())
