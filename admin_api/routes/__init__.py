"""HTTP routes of the admin API, one module per resource."""

from __future__ import annotations

from aiohttp import web

from admin_api.routes import breakers, commands, content_defense, quarantine, service

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
ADMIN_PREFIX = "/v1/admin/"


def add_routes(app: web.Application) -> None:
    for module in (service, quarantine, breakers, content_defense, commands):
        app.router.add_routes(module.routes)
