"""The hub's settings: every command-line flag, also readable as HUB_<FLAG> (flags win)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .signalr.transports import TRANSPORTS

_TRANSPORT_NAMES = tuple(t.name for t in TRANSPORTS)  # negotiate's order


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: list[str] = field(default_factory=list)
    token_file: str | None = None
    jwt_secret: str | None = None  # HS256; prefer jwt_secret_file or HUB_JWT_SECRET (argv is visible in ps)
    jwt_secret_file: str | None = None
    jwt_public_key: str | None = None  # PEM file of RS256/ES256 public keys
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    allow_anonymous: bool = False
    store: str = "sqlite"
    store_timeout: float = 10.0  # seconds a store write may take (redis: then it is never applied)
    data_dir: str = "./hub-data"
    log_level: str = "info"
    log_format: str = "text"  # text | json (one JSON object a line)
    metrics: bool = True  # GET /metrics; --no-metrics turns it off
    metrics_token: str | None = None  # when set, GET /metrics needs it (or a hub token) as Bearer
    keepalive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 15.0
    max_message_size: int = 1_048_576
    max_body_size: int = 10_485_760
    shutdown_timeout: float = 10.0
    header_timeout: float = 10.0  # seconds a connection has to send a complete request head
    http: str = "auto"  # the HTTP/1.1 parser: auto (httptools if installed) | httptools | h11
    poll_timeout: float = 90.0
    transports: list[str] = field(default_factory=lambda: list(_TRANSPORT_NAMES))
    cors_origins: list[str] = field(default_factory=list)
    rate_limit: float | None = None  # requests per second per token and topic; None = off
    retention: str | None = None  # e.g. "7d", "100000" (count), "7d,100000"
    max_send_queue: int = 10_000
    max_send_queue_bytes: int = 16 * 1024 * 1024
    max_streams_per_connection: int = 100
    max_invocations_per_connection: int = 100
    max_connections: int | None = None  # None: default_max_connections() at start
    ssl_certfile: str | None = None  # set: HTTPS and WSS on --port
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = field(default=None, repr=False)  # a secret: never in a repr
    root_path: str = ""  # the path prefix a proxy serves the hub under, e.g. /signalr
    forwarded_allow_ips: str = "127.0.0.1,::1"  # peers whose X-Forwarded-For/-Proto are believed (uvicorn's default)


def default_max_connections() -> int:
    """min(15,000, the soft open-files limit - 1,000): each connection holds a socket, and the
    rest of the process (the store, HTTP requests, /health) keeps 1,000 descriptors."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return 15_000
    if soft == resource.RLIM_INFINITY:
        return 15_000
    return max(1, min(15_000, soft - 1_000))


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _retention(text: str) -> str:
    """Checked here so a bad value stops the hub at start with the parser's message."""
    from .streams.store.retention import parse_retention

    try:
        parse_retention(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _root_path(text: str) -> str:
    """`/prefix` (no trailing slash): what a proxy in front strips, and puts back in every URL."""
    path = text.strip().rstrip("/")
    if path and not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected a path starting with /, e.g. /signalr, got {text!r}")
    return path


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise argparse.ArgumentTypeError(f"expected text or json, got {text!r}")
    return text


def _http_implementation(text: str) -> str:
    if text not in ("auto", "httptools", "h11"):
        raise argparse.ArgumentTypeError(f"expected auto, httptools or h11, got {text!r}")
    return text


# (flag, type, help). The env name is HUB_ + the flag upper-cased with dashes as underscores.
_FLAGS: list[tuple[str, Callable[[str], Any], str]] = [
    ("host", str, "address to listen on"),
    ("port", int, "port to listen on"),
    ("token-file", str, "file of accepted tokens: `<token> [name=<name>] [<read|write|admin>:<topic glob> ...]` a line; re-read on SIGHUP and when it changes"),
    ("jwt-secret", str, "accept HS256 JWT bearer tokens signed with this secret (prefer --jwt-secret-file or the env)"),
    ("jwt-secret-file", str, "file holding the HS256 JWT secret; re-read on SIGHUP and when it changes"),
    ("jwt-public-key", str, "PEM file of RS256/ES256 public keys (any may sign); re-read on SIGHUP and when it changes"),
    ("jwt-issuer", str, "the iss every JWT must carry (not checked when not given)"),
    ("jwt-audience", str, "the aud every JWT must carry (not checked when not given)"),
    ("store", str, "where data is kept: sqlite (<data-dir>/hub.db) | sqlite:///path.db | memory | redis://host:port/db"),
    ("store-timeout", _positive(float), "seconds a write to a redis store may take before it is answered failed (never applied after)"),
    ("data-dir", str, "where the hub keeps what it must keep (the generated token, the database)"),
    ("log-level", str, "debug | info | warning | error"),
    ("log-format", _log_format, "text | json (one JSON object a line, uvicorn's access log too)"),
    ("metrics-token", str, "a token GET /metrics then needs (Bearer); an admin token (admin:*) is accepted too"),
    ("keepalive-interval", _positive(float), "seconds of silence before the server pings"),
    ("client-timeout", _positive(float), "seconds without a client message before it is dropped"),
    ("handshake-timeout", _positive(float), "seconds a new connection has to send its handshake"),
    ("disconnect-timeout", _positive(float), "seconds a negotiated connection waits for its transport"),
    ("max-message-size", _positive(int), "largest SignalR message in bytes"),
    ("max-body-size", _positive(int), "largest HTTP request body in bytes (413 above)"),
    ("shutdown-timeout", _positive(float), "seconds a graceful shutdown waits for in-flight work"),
    ("header-timeout", _positive(float), "seconds a connection has to send a complete request head before it is closed"),
    ("http", _http_implementation, "HTTP/1.1 parser: auto (httptools when installed) | httptools | h11"),
    ("poll-timeout", _positive(float), "seconds a long poll waits for data before answering with none"),
    ("rate-limit", _positive(float), "requests per second per token and topic (off by default)"),
    ("retention", _retention, "keep data by age and/or count per stream, e.g. 7d, 100000, 7d,100000"),
    ("max-send-queue", _positive(int), "messages waiting to be written to one client before it is closed as fallen behind"),
    ("max-send-queue-bytes", _positive(int), "bytes waiting to be written to one client before it is closed as fallen behind"),
    ("max-streams-per-connection", _positive(int), "stream invocations (uploads and downloads) open at once on one connection"),
    ("max-invocations-per-connection", _positive(int), "invocations awaiting their Completion on one connection before it is not read"),
    ("max-connections", _positive(int), "SignalR connections, both hubs together (default: min(15000, open-files limit - 1000))"),
    ("ssl-certfile", str, "PEM certificate (chain) file: serve HTTPS and WSS"),
    ("ssl-keyfile", str, "PEM private key file of --ssl-certfile"),
    ("ssl-keyfile-password", str, "password of an encrypted --ssl-keyfile (prefer the env variable: argv is visible to all)"),
    ("root-path", _root_path, "path prefix a reverse proxy serves the hub under and strips, e.g. /signalr"),
    ("forwarded-allow-ips", str, "comma-separated peer addresses (or *) whose X-Forwarded-For and X-Forwarded-Proto are believed"),
]

# Repeatable flags: (flag, dest, help); env HUB_<DEST> comma-separated.
_LISTS: list[tuple[str, str, str]] = [
    ("token", "tokens", "an accepted token"),
    ("transport", "transports", "a SignalR transport to offer: " + ", ".join(_TRANSPORT_NAMES)),
    ("cors-origin", "cors_origins", "an origin allowed to call the hub from a browser, e.g. https://app.example"),
]


def _env_name(flag: str) -> str:
    return "HUB_" + flag.upper().replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="writer-hub", description="SignalR-compatible writer hub")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the hub")
    defaults = Settings()
    for flag, kind, text in _FLAGS:
        dest = flag.replace("-", "_")
        serve.add_argument(
            f"--{flag}", type=kind, default=None, help=f"{text} (env {_env_name(flag)}; default {getattr(defaults, dest)})"
        )
    for flag, dest, text in _LISTS:
        serve.add_argument(
            f"--{flag}", dest=dest, action="append", default=None,
            help=f"{text}; repeatable (env HUB_{dest.upper()}, comma-separated)",
        )
    # --transports a,b is the same as --transport a --transport b
    serve.add_argument("--transports", dest="transports_csv", default=None, help="comma-separated transports")
    serve.add_argument("--allow-anonymous", action="store_true", default=None, help="no auth at all (env HUB_ALLOW_ANONYMOUS)")
    serve.add_argument("--no-metrics", action="store_true", default=None, help="no GET /metrics, nothing counted (env HUB_NO_METRICS)")
    return parser


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Flags win over HUB_* environment variables, which win over the defaults."""
    env = os.environ if env is None else env
    settings = Settings()
    for flag, kind, _ in _FLAGS:
        dest = flag.replace("-", "_")
        value = getattr(args, dest)
        if value is None and _env_name(flag) in env:
            try:
                value = kind(env[_env_name(flag)])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise SystemExit(f"writer-hub: {_env_name(flag)}: {exc}") from None
        if value is not None:
            setattr(settings, dest, value)
    if args.transports_csv:
        args.transports = (args.transports or []) + args.transports_csv.split(",")
    for _, dest, _ in _LISTS:
        given = getattr(args, dest)
        raw = ",".join(given) if given else env.get(f"HUB_{dest.upper()}")
        if raw is None and dest == "tokens":
            raw = env.get("HUB_TOKEN")
        if raw is not None:
            setattr(settings, dest, [v.strip() for v in raw.split(",") if v.strip()])
    unknown = set(settings.transports) - set(_TRANSPORT_NAMES)
    if unknown or not settings.transports:
        raise SystemExit(f"writer-hub: --transport: unknown {sorted(unknown)}; use {', '.join(_TRANSPORT_NAMES)}")
    if settings.ssl_keyfile and not settings.ssl_certfile:
        raise SystemExit("writer-hub: --ssl-keyfile needs --ssl-certfile")
    if args.allow_anonymous:
        settings.allow_anonymous = True
    elif "HUB_ALLOW_ANONYMOUS" in env:
        settings.allow_anonymous = _bool(env["HUB_ALLOW_ANONYMOUS"])
    if args.no_metrics:
        settings.metrics = False
    elif "HUB_NO_METRICS" in env:
        settings.metrics = not _bool(env["HUB_NO_METRICS"])
    return settings


def parse_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> tuple[str, Settings]:
    args = build_parser().parse_args(argv)
    return args.command, settings_from(args, env)
