"""The whole service, assembled: read this file as the table of contents.

    /hub                      SignalR Writer hub (negotiate; WebSockets,       hub/writer, hub/signalr
                              Server-Sent Events, long polling)
    /reader                   SignalR Reader hub: live subscriptions,          hub/reader
                              fanned out from the store's change broadcast
    /, /console/...           the live console page (static), no auth         hub/console
    /topics/...               HTTP Writer and read API (JSON, NDJSON, gzip)    hub/http_api/routes.py
    /topics/{t}/quarantine    NDJSON lines that were not valid events          hub/http_api/routes.py
    /v0/events                drop-in: Tinybird Events API                     hub/http_api/tinybird.py
    /{hub}/messages           drop-in: Event Hubs REST send (routed last)      hub/http_api/eventhubs.py
    /openapi.json, /docs      the HTTP surface described, no auth              hub/http_api/openapi.py
    /health                   liveness, no auth
    /ready                    readiness: 503 while the store is unreachable    hub/http_api/ready.py
    /whoami                   the token's user and scopes, open (nobody: null) hub/http_api/whoami.py
    /metrics                  Prometheus metrics (off: --no-metrics)           hub/metrics
X-Idempotency-Key on every HTTP write (hub/http_api/idempotency.py); records kept in the store.
Who may do what: hub/auth/ (tokens, the token file, JWTs, reload on SIGHUP or file change; the
connections of a revoked token are closed here, after each reload); on HTTP each operation's access
(hub/http_api/access.py, guard.py), in the hubs hub/auth/hub_calls.py. --rate-limit (per user and
topic, HTTP and SignalR alike): hub/ratelimit.py.
Everything writes through one StreamService (hub/streams/service.py) into one StreamStore
(hub/streams/store/), chosen by --store. Browsers on other origins: --cors-origin (hub/cors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from . import cors
from .auth.authenticator import REVOKED, AuthConfig, Authenticator
from .config import Settings, default_max_connections
from . import __version__
from .http_api import errors as http_errors
from .http_api.acks import Acknowledgements
from .http_api.eventhubs import EventHubsMessages
from .http_api.guard import Guard
from .http_api.idempotency import IdempotentWrites
from .http_api.openapi import OpenApi, negotiate_operation, signalr_transport_operations
from .http_api.operations import Operation, build_routes
from .http_api.ready import ready_operation
from .http_api.routes import HttpApi
from .http_api.tinybird import TinybirdEvents
from .http_api.whoami import whoami_operation
from .metrics import HubMetrics, MetricsEndpoint
from .ratelimit import RateLimiter
from .signalr.close_reason import CloseReason
from .signalr.options import SignalROptions
from .signalr.connections import ConnectionSlots
from .signalr.endpoint import HubEndpoint
from .streams.service import StreamService
from .streams.store import open_store
from .writer.hub import WriterHub
from .reader.docs import reader_operations
from .reader.hub import ReaderHub
from .console import console_operation, console_routes


def build_app(settings: Settings, tokens: list[str]) -> Starlette:
    store = open_store(settings.store, settings.data_dir, settings.retention, timeout=settings.store_timeout)
    service = StreamService(store)
    auth = Authenticator(AuthConfig(
        tokens=tuple(tokens), token_file=settings.token_file, jwt_secret=settings.jwt_secret,
        jwt_secret_file=settings.jwt_secret_file, jwt_public_key=settings.jwt_public_key,
        jwt_issuer=settings.jwt_issuer, jwt_audience=settings.jwt_audience, allow_anonymous=settings.allow_anonymous,
    ))  # raises AuthError on a malformed token file or key
    options = SignalROptions(
        keepalive_interval=settings.keepalive_interval,
        client_timeout=settings.client_timeout,
        handshake_timeout=settings.handshake_timeout,
        disconnect_timeout=settings.disconnect_timeout,
        max_message_size=settings.max_message_size,
        shutdown_timeout=settings.shutdown_timeout,
        poll_timeout=settings.poll_timeout,
        max_send_queue=settings.max_send_queue,
        max_send_queue_bytes=settings.max_send_queue_bytes,
        max_streams=settings.max_streams_per_connection,
        max_invocations=settings.max_invocations_per_connection,
    )
    slots = ConnectionSlots(settings.max_connections or default_max_connections())  # both hubs together
    limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    transports = tuple(settings.transports)
    refused: Counter[str] = Counter()  # the HTTP edge's refusals (hub/http_edge.py, wired by the server)
    # Long polls and SSE streams (the transports' GETs) are held open on purpose: counted, not timed.
    untimed = [("GET", "/hub"), ("GET", "/reader")]
    metrics = HubMetrics(store, slots, limiter, refused, untimed) if settings.metrics else None  # --no-metrics: None

    def source(name: str) -> StreamService:  # the service an entry point writes through: its writes counted
        return service.tallied(metrics.tally(name)) if metrics is not None else service

    writer = HubEndpoint("/hub", WriterHub(source("signalr"), limiter), options, auth, transports=transports, slots=slots)
    reader = HubEndpoint("/reader", ReaderHub(service), options, auth, transports=transports, slots=slots)
    acks = Acknowledgements()  # writes answered 202 (wait=false), watched until stored
    body = settings.max_body_size
    http_api = HttpApi(source("http"), max_body_size=body, acks=acks)
    openapi = OpenApi("writer-hub", __version__)
    http_operations = [  # /{hub}/messages last: it must never shadow another route
        *http_api.operations,
        *TinybirdEvents(source("tinybird"), max_body_size=body, acks=acks).operations,
        *openapi.operations,
        *EventHubsMessages(source("eventhubs"), max_body_size=body).operations,
        ready_operation(store),
        whoami_operation(auth),
    ]
    http_operations = IdempotentWrites(store, max_body_size=body).apply(http_operations)
    metrics_routes: list[BaseRoute] = []  # GET /metrics: its own token, not the guard's
    metrics_operations: list[Operation] = []
    metrics_middleware: list[Middleware] = []  # http_requests_total, by route
    if metrics is not None:
        metrics.observe(writer.dispatcher)
        metrics.observe(reader.dispatcher)
        scrape = MetricsEndpoint(metrics.registry, metrics.before_scrape, settings.metrics_token, auth)
        metrics_routes, metrics_operations = scrape.routes, [scrape.operation]
        metrics_middleware = [Middleware(metrics.http.middleware)]
    openapi.describe([*http_operations, negotiate_operation("/hub"), *signalr_transport_operations("/hub"),
                      *reader_operations("/reader"), console_operation(), *metrics_operations])
    endpoints = [writer, reader]
    drained = False

    async def drain() -> None:
        """Graceful shutdown, before the server stops: finish in-flight work, tell clients to reconnect.
        The steps run side by side, so --shutdown-timeout bounds them all, not each in turn."""
        nonlocal drained
        if not drained:
            drained = True
            timeout = settings.shutdown_timeout
            await asyncio.gather(*(endpoint.shutdown(timeout) for endpoint in endpoints), acks.drain(timeout))

    def close_revoked() -> None:
        """After a reload: the connections of a removed token (or of a JWT no key verifies) end now."""
        for endpoint in endpoints:
            endpoint.close_connections(lambda user: user is None or user.revoked, REVOKED, CloseReason.TOKEN_REVOKED)

    auth.listeners.append(close_revoked)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        for endpoint in endpoints:
            await endpoint.start()
        await auth.start()  # SIGHUP and file changes reload the tokens and keys
        try:
            yield
        finally:
            await auth.stop()
            await drain()
            await store.close()

    app = Starlette(
        routes=[
            *writer.routes,
            *reader.routes,
            *console_routes(),  # the live console page at /, no auth to load it
            *metrics_routes,
            *build_routes(http_operations, Guard(auth, limiter).wrap),
        ],
        middleware=[*metrics_middleware, *cors.middleware(settings.cors_origins)],  # --cors-origin: browsers on other origins
        exception_handlers=http_errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.drain = drain
    app.state.auth = auth
    app.state.service = service
    app.state.openapi = openapi
    app.state.refused = refused
    app.state.metrics = metrics
    return app
