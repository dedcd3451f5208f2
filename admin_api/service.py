"""State shared by the request handlers (read model, command service) and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from admin_api.auth import Authenticator
from admin_api.commands import CommandService
from admin_api.errors import NotReady
from admin_api.metrics import ApiMetrics
from admin_api.read_model import ReadModel
from admin_api.read_model.feed import StateFeed
from streams.settings import GateSettings

JSON_CONTENT_TYPE = "application/json"


@dataclass
class AdminService:
    settings: GateSettings
    authenticator: Authenticator
    read_model: ReadModel
    commands: CommandService
    metrics: ApiMetrics
    feed: StateFeed | None = None

    def readiness_problems(self) -> list[str]:
        """List why the service cannot serve current data; empty when it can."""
        problems: list[str] = []
        if self.feed is not None:
            problems.extend(self.feed.problems())
        elif not self.read_model.ready:
            problems.append("read model not loaded")
        if self.commands.sink is None:
            problems.append("command producer not started")
        return problems

    def require_ready(self) -> None:
        problems = self.readiness_problems()
        if problems:
            raise NotReady(
                "the admin API is still loading the gate's state: " + "; ".join(problems),
                headers={"Retry-After": "1"},
            )


SERVICE_KEY = web.AppKey("admin_service", AdminService)
OPERATOR_KEY = web.RequestKey("operator", str)


def service_of(request: web.Request) -> AdminService:
    return request.app[SERVICE_KEY]


def operator_of(request: web.Request) -> str:
    return request[OPERATOR_KEY]


def utc_now() -> datetime:
    return datetime.now(UTC)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type=JSON_CONTENT_TYPE, headers=headers
    )


def accepted(command_id: str) -> web.Response:
    """Return the 202 of a write that did not wait for its result."""
    return json_response({"command_id": command_id, "status": "pending"}, status=202)
