"""The aiohttp application of the admin API and the function that serves it.

:func:`create_app` builds the application: middlewares for metrics, errors and
authentication, the routes, and a cleanup context that runs the Kafka producer and the
read model's feed for as long as the application runs. Tests pass their own
``sink`` (and a read model they fill by hand) to run without Kafka.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from admin_api.auth import build_authenticator
from admin_api.commands import CommandService, CommandSink, KafkaCommandSink
from admin_api.errors import AdminApiError, HttpError, MethodNotAllowed, NotFound
from admin_api.metrics import ApiMetrics
from admin_api.read_model import ReadModel
from admin_api.read_model.feed import StateFeed
from admin_api.routes import ADMIN_PREFIX, add_routes
from admin_api.service import OPERATOR_KEY, SERVICE_KEY, AdminService, json_response
from streams.settings import GateSettings
from streams.topics import ADMIN_COMMANDS

logger = logging.getLogger(__name__)

PRODUCER_CLIENT_ID = "stemedb-admin-api"
PRODUCER_LINGER_MS = 2


def create_app(
    settings: GateSettings,
    *,
    sink: CommandSink | None = None,
    read_model: ReadModel | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """Build the admin API for ``settings``.

    Raises :class:`~streams.errors.ConfigError` when authentication is not configured
    (see :func:`admin_api.auth.build_authenticator`). Without ``sink`` the application
    connects to Kafka when it starts; with one, it uses ``sink`` and ``read_model``
    as they are.
    """
    api = settings.admin_api
    authenticator = build_authenticator(api)
    read_model = read_model if read_model is not None else ReadModel(settings)
    metrics = ApiMetrics(registry if registry is not None else CollectorRegistry())
    metrics.watch(read_model)
    service = AdminService(
        settings=settings,
        authenticator=authenticator,
        read_model=read_model,
        commands=CommandService(read_model, api.command_timeout_seconds, metrics, sink),
        metrics=metrics,
    )
    app = web.Application(
        middlewares=[_metrics_middleware, _error_middleware, _auth_middleware],
        client_max_size=api.max_request_bytes,
    )
    app[SERVICE_KEY] = service
    add_routes(app)
    if sink is None:
        app.cleanup_ctx.append(_kafka_clients)
    return app


async def _kafka_clients(app: web.Application) -> AsyncIterator[None]:
    """Run the command producer and the state feed while the application runs."""
    service = app[SERVICE_KEY]
    kafka = service.settings.kafka
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=PRODUCER_CLIENT_ID,
        acks="all",
        enable_idempotence=True,
        linger_ms=PRODUCER_LINGER_MS,
    )
    try:
        # Not "async with producer": a producer whose start() failed is not closed by it.
        try:
            await producer.start()
            async with StateFeed(service.settings, service.read_model) as feed:
                service.feed = feed
                service.commands.sink = KafkaCommandSink(producer, kafka.topic(ADMIN_COMMANDS))
                logger.info(
                    "admin API connected to Kafka at %s (topic prefix %r)",
                    kafka.bootstrap_servers,
                    kafka.topic_prefix,
                )
                try:
                    yield
                finally:
                    service.commands.sink = None
                    service.feed = None
        finally:
            await producer.stop()
    except KafkaError as exc:
        raise AdminApiError(
            f"the admin API cannot use Kafka at {kafka.bootstrap_servers}: {exc}; check that "
            "the broker runs and kafka.bootstrap_servers names it"
        ) from exc
    logger.info("admin API disconnected from Kafka")


def _error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message, "field": None}


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into the JSON error shape; only cancellation passes through."""
    try:
        return await handler(request)
    except HttpError as exc:
        return json_response(exc.body(), exc.status, headers=exc.headers or None)
    except web.HTTPException as exc:
        # aiohttp's own: no route, wrong method, body over client_max_size.
        if exc.status == 404:
            error: HttpError = NotFound(f"no route {request.method} {request.path}")
        elif exc.status == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        else:
            return json_response(
                _error_body(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or ""),
                exc.status,
            )
        return json_response(error.body(), error.status)
    except Exception:
        logger.exception("request %s %s failed", request.method, request.path)
        return json_response(
            _error_body(500, "internal", "internal error; the admin API log has the details"),
            500,
        )


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a bearer token and a loaded read model on every ``/v1/admin`` route."""
    if request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/"):
        service = request.app[SERVICE_KEY]
        request[OPERATOR_KEY] = service.authenticator.operator_for(
            request.headers.get("Authorization")
        )
        service.require_ready()
    return await handler(request)


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests by route template (never the raw path, whose ids are unbounded)."""
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    response = await handler(request)
    metrics = request.app[SERVICE_KEY].metrics
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    metrics.request_seconds.labels(route, request.method).observe(time.perf_counter() - started)
    return response


def run_admin_api(settings: GateSettings) -> None:
    """Serve the admin API until SIGINT or SIGTERM; raises ConfigError before binding."""
    app = create_app(settings)
    api = settings.admin_api
    logger.info(
        "starting admin API on http://%s:%d (authentication %s)",
        api.host,
        api.port,
        "on" if app[SERVICE_KEY].authenticator.enabled else "OFF",
    )
    try:
        web.run_app(app, host=api.host, port=api.port, print=None)
    except OSError as exc:
        # Binding happens after the Kafka clients started; run_app has stopped them.
        raise AdminApiError(
            f"the admin API cannot listen on {api.host}:{api.port}: {exc.strerror or exc}; "
            "stop the process that uses the port or set admin_api.port"
        ) from exc
