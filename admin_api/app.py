"""The aiohttp application of the admin API and the function that serves it.

:func:`create_app` builds the application: middlewares for metrics, errors and
authentication, the routes, and a cleanup context that runs the Kafka producer and the
read model's feed for as long as the application runs. Tests pass their own
``sink`` (and a read model they fill by hand) to run without Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
from admin_api.review import REVIEW_PAGE_PATH, add_review_page
from admin_api.routes import ADMIN_PREFIX, add_routes
from admin_api.service import OPERATOR_KEY, SERVICE_KEY, AdminService, json_response
from streams.kafka_security import aiokafka_security_options
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
    app = api_application(service)
    if sink is None:
        app.cleanup_ctx.append(_kafka_clients)
    return app


def api_application(service: AdminService) -> web.Application:
    """Build an application with every API route and middleware, serving ``service``.

    The admin API and the review site are two such applications on one ``service``,
    so a request to either one is authenticated, counted and handled the same way.
    """
    app = web.Application(
        middlewares=[_metrics_middleware, _error_middleware, _auth_middleware],
        client_max_size=service.settings.admin_api.max_request_bytes,
    )
    app[SERVICE_KEY] = service
    add_routes(app)
    return app


def create_review_app(service: AdminService) -> web.Application:
    """Build the review site: the review page plus every API route, on ``service``.

    The page calls the API on its own origin, so the browser needs no CORS, and each
    action goes through the same handlers, tokens and commands as a call to the API.
    """
    app = api_application(service)
    add_review_page(app)
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
        **aiokafka_security_options(kafka),
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
    """Serve the admin API and the review page until SIGINT or SIGTERM.

    Raises ConfigError before binding, and AdminApiError when Kafka or a port is
    unusable.
    """
    app = create_app(settings)
    review_app = create_review_app(app[SERVICE_KEY])
    api = settings.admin_api
    logger.info(
        "starting admin API on http://%s:%d and the review page on http://%s:%d%s "
        "(authentication %s)",
        api.host,
        api.port,
        api.host,
        api.review_port,
        REVIEW_PAGE_PATH,
        "on" if app[SERVICE_KEY].authenticator.enabled else "OFF",
    )
    asyncio.run(_serve_until_signal(app, review_app, api.host, api.port, api.review_port))


async def _serve_until_signal(
    app: web.Application, review_app: web.Application, host: str, port: int, review_port: int
) -> None:
    """Run both applications on their ports until SIGINT or SIGTERM, then stop them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve_sites(app, review_app, host, port, review_port):
            await stop.wait()
            logger.info("admin API stopping on a signal")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@asynccontextmanager
async def serve_sites(
    app: web.Application, review_app: web.Application, host: str, port: int, review_port: int
) -> AsyncIterator[None]:
    """Serve ``app`` on ``host:port`` and ``review_app`` on ``host:review_port``.

    Setting up ``app`` starts its Kafka clients, and then both ports are bound. When the
    block ends, the review site stops first and the API after it, whose cleanup stops
    the Kafka clients.
    """
    async with AsyncExitStack() as stack:
        runner = web.AppRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        review_runner = web.AppRunner(review_app)
        await review_runner.setup()
        stack.push_async_callback(review_runner.cleanup)

        # Bind the API port last, so that once /readyz returns 200 the page is served too.
        await _bind(review_runner, host, review_port, "admin_api.review_port")
        await _bind(runner, host, port, "admin_api.port")
        yield


async def _bind(runner: web.AppRunner, host: str, port: int, setting: str) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise AdminApiError(
            f"the admin API cannot listen on {host}:{port}: {exc.strerror or exc}; "
            f"stop the process that uses the port or set {setting}"
        ) from exc
