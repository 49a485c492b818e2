"""`python -m hub serve` / `writer-hub serve`: start the hub under uvicorn.

Ctrl-C / SIGTERM first drain the hubs (in-flight invocations finish, clients get a Close with
allowReconnect), then let uvicorn stop: uvicorn alone would cut WebSockets with code 1012 at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.config
import resource
import sys
from typing import Sequence

import uvicorn

from .app import build_app
from .auth.authenticator import AuthError
from .auth.generated import generated_token, token_path
from .config import Settings, default_max_connections, parse_settings
from .http_edge import http_protocol_class
from .logs import configure_logging

log = logging.getLogger("hub")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain):
        super().__init__(config)
        self._drain = drain
        self._shutdown_timeout = config.timeout_graceful_shutdown or 0.0
        self._draining: asyncio.Task | None = None

    def handle_exit(self, sig, frame) -> None:  # called from the signal handler, loop running
        if self._draining is None and not self.should_exit:
            self._draining = asyncio.get_event_loop().create_task(self._drain_then_exit(sig, frame))
        else:  # a second Ctrl-C: stop now
            super().handle_exit(sig, frame)

    async def _drain_then_exit(self, sig, frame) -> None:
        log.info("shutting down: finishing in-flight work")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._shutdown_timeout
        try:
            await self._drain()
        finally:
            # uvicorn then waits for the requests still open only for what is left of the same
            # timeout (not a second one) before cancelling them: SIGTERM to exit stays within it.
            self.config.timeout_graceful_shutdown = max(0.0, deadline - loop.time())  # type: ignore[assignment]
            super().handle_exit(sig, frame)


def public_url(settings: Settings) -> str:
    """Where the hub listens, as a client on this machine reaches it (https with --ssl-certfile);
    without --root-path's prefix, which only a proxy in front adds."""
    scheme = "https" if settings.ssl_certfile else "http"
    return f"{scheme}://{settings.host}:{settings.port}"


def _tokens(settings: Settings) -> list[str]:
    """The admin tokens: --token, else (no token file, no JWT key either) the generated one."""
    tokens = list(settings.tokens)
    configured = settings.token_file or settings.jwt_secret or settings.jwt_secret_file or settings.jwt_public_key
    if tokens or configured or settings.allow_anonymous:
        return tokens
    token, created = generated_token(settings.data_dir)
    path = token_path(settings.data_dir)
    if not created:
        # Under systemd or Docker stdout is the log: the token is shown once, when it is made.
        print(f"Using the hub's access token kept in {path} (read it there).", flush=True)
        return [token]
    base = public_url(settings)
    # stdout, this once, never through the logger: the logger must never see a token.
    print(
        f"Generated the hub's access token (kept in {path}; later starts will not print it):\n"
        f"  {token}\n"
        f"Try it:\n"
        f"  curl -H 'Authorization: Bearer {token}' {base}/topics\n",
        flush=True,
    )
    return [token]


# Python's cyclic collector runs a young-generation pass every 700 new container objects. A write of
# 100 events or an NDJSON request of 1,000 decodes that many dicts, alive until the write is
# validated, so each pass examined them and promoted them towards the old generation, whose full
# passes then came more often: a quarter of the hub's CPU on those writes (bench/RESULTS.md, "Second round").
# Nearly all of our garbage is freed by reference counting; cycles are rare and wait a little longer.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """For the serving process only (an app embedded elsewhere keeps its host's settings): the
    objects made while starting (modules, the app) move to the permanent generation, never walked
    again, and the young generation is collected every GC_YOUNG_THRESHOLD objects."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit (every connection is a file; a
    soft limit of 1,024 is common and far below what one hub holds). Returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # Linux refuses more than fs.nr_open
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = 1_048_576
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("open-files limit stays %d: raising it to %d failed: %s", soft, target, exc)
        return soft
    log.info("open-files limit raised from %d to %d (the hard limit)", soft, target)
    return target


def serve(settings: Settings, sockets: list | None = None) -> int:
    """`sockets`: listen on these (already bound) instead of host:port, e.g. one SO_REUSEPORT socket
    per process when several hub processes share a port (bench/multihub.py)."""
    log_config = configure_logging(settings.log_level, settings.log_format)
    logging.config.dictConfig(log_config)
    raise_open_files_limit()
    if settings.max_connections is None:  # after raising the open-files limit it is computed from
        settings.max_connections = default_max_connections()
    log.info("at most %d SignalR connections (--max-connections)", settings.max_connections)
    tokens = _tokens(settings)
    if settings.allow_anonymous:
        log.warning("ANONYMOUS ACCESS IS ON: anyone who can reach %s:%s can read and write", settings.host, settings.port)
    try:
        app = build_app(settings, tokens)
    except AuthError as exc:  # a malformed token file or key: names the file and line, never a token
        print(f"writer-hub: {exc}", file=sys.stderr, flush=True)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config,
        # request head bounded (431), header timeout, idle timeout before the first request: hub/http_edge.py
        http=http_protocol_class(settings.http, settings.header_timeout, app.state.refused),
        ws="websockets-sansio",
        ws_max_size=max(16 * 1024 * 1024, 2 * settings.max_message_size),
        ws_ping_interval=None,  # SignalR has its own keep-alive
        timeout_graceful_shutdown=settings.shutdown_timeout,
        server_header=False,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        ssl_keyfile_password=settings.ssl_keyfile_password,
        # behind a proxy: the prefix it strips (put back in scope["path"], OpenAPI servers), and whose
        # X-Forwarded-For / -Proto to believe (the access log's client address, the URL scheme)
        root_path=settings.root_path,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = GracefulServer(config, app.state.drain)
    tune_gc()
    log.info("writer hub on %s (store: %s)", public_url(settings), settings.store)
    server.run(sockets=sockets)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    command, settings = parse_settings(argv)
    if command == "serve":
        return serve(settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
