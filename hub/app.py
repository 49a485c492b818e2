"""The whole service, assembled: read this file as the table of contents.

    /hub                      SignalR Writer hub (negotiate + transports)      hub/writer, hub/signalr
    /topics/...               HTTP Writer and read API                         hub/http_api
    /health                   liveness, no auth
Everything writes through one IngestionService (hub/streams/service.py) into one StreamStore
(hub/streams/store/), chosen by --store.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from .auth import TokenAuth
from .config import Settings
from .http_api import errors as http_errors
from .http_api.routes import HttpApi
from .signalr.connection import SignalROptions
from .signalr.endpoint import HubEndpoint
from .streams.service import IngestionService
from .streams.store import open_store
from .writer.hub import WriterHub


def build_app(settings: Settings, tokens: list[str]) -> Starlette:
    store = open_store(settings.store, settings.data_dir)
    service = IngestionService(store)
    auth = TokenAuth(tokens, allow_anonymous=settings.allow_anonymous)
    options = SignalROptions(
        keepalive_interval=settings.keepalive_interval,
        client_timeout=settings.client_timeout,
        handshake_timeout=settings.handshake_timeout,
        disconnect_timeout=settings.disconnect_timeout,
        max_message_size=settings.max_message_size,
        shutdown_timeout=settings.shutdown_timeout,
    )
    writer = HubEndpoint("/hub", WriterHub(service), options, auth, transports=tuple(settings.transports))
    http_api = HttpApi(service, auth, max_body_size=settings.max_body_size)
    endpoints = [writer]
    drained = False

    async def drain() -> None:
        """Graceful shutdown, before the server stops: finish in-flight work, tell clients to reconnect."""
        nonlocal drained
        if not drained:
            drained = True
            for endpoint in endpoints:
                await endpoint.shutdown(settings.shutdown_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        for endpoint in endpoints:
            await endpoint.start()
        try:
            yield
        finally:
            await drain()
            await store.close()

    app = Starlette(
        routes=[
            Route("/health", http_api.health, methods=["GET"]),
            *writer.routes,
            *http_api.routes,
        ],
        exception_handlers=http_errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.drain = drain
    app.state.service = service
    return app
