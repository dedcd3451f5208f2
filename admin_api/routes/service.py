"""Routes without authentication: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from admin_api.metrics import EXPOSITION_CONTENT_TYPE
from admin_api.openapi import openapi_document
from admin_api.service import json_response, service_of

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Return 200 while the process serves requests."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Return 200 once the read model caught up and the producer runs, else 503."""
    problems = service_of(request).readiness_problems()
    status = 503 if problems else 200
    return json_response({"ready": not problems, "problems": problems}, status)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = service_of(request).metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": EXPOSITION_CONTENT_TYPE})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(service_of(request).settings))
