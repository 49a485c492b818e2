"""Logging set-up. No secret reaches a log line, and a client's mistake is one line at info.

Secrets: every query string in a record (uvicorn's access and WebSocket lines carry the raw one) is
read the way the hub reads it (Starlette: split on `&`, `+` as space, percent-escapes decoded), and
a pair whose decoded key names a secret has its value replaced, whatever its spelling on the wire:
`access_token` and `token` (accepted tokens) and `id` (a connection token, which lets its holder
use the connection). `Bearer …` and `SharedAccessSignature …` values, passwords in URLs and anything
shaped like a JWT (`eyJ….eyJ….…`) go too.
The record's message, arguments, traceback and stack are all redacted.

Client mistakes: uvicorn logs a WebSocket text frame that is not UTF-8 as an ERROR with a traceback
(its websockets-sansio implementation closes it correctly with 1007), and a request that is not
HTTP, or asks to upgrade to another protocol than WebSocket, as a WARNING. All are the client's
doing: ClientMistakes turns each into one info line. (A request body cut short by the client is
answered without a traceback by http_api/errors.py.)
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

# Decoded query keys (stripped, lower-cased) whose values are secrets: tokens (Tinybird senders
# pass theirs as token=), the connection token (id=), and a SharedAccessSignature's signature.
SECRET_KEYS = frozenset({"access_token", "token", "id", "sig", "signature"})
REDACTED = "***"

# A query string in free text: from a '?' to the next white space or quote.
_QUERY = re.compile(r"\?([^\s\"'<>]+)")
# Credentials outside queries: an Authorization value and the userinfo of a URL.
_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|sharedaccesssignature)(\s+)[^\s\"',]+(?:[ \t]+(?:sr|sig|se|skn)=[^\s\"',]*)*"
    r"|(\b[a-z][a-z0-9+.-]*://)[^\s/@\"']*@"
)
# A JWT wherever it appears (a token in a path, a header echoed in an error): header.payload.signature,
# the first two base64url JSON objects, so `eyJ`.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_MAX_DECODES = 4  # a key is decoded until it stops changing (bounded): %2565 is caught as well as %65


def _is_secret_key(raw_key: str) -> bool:
    key = raw_key
    for _ in range(_MAX_DECODES):
        decoded = unquote_plus(key)
        if decoded == key:
            break
        key = decoded
    key = key.strip().lower()
    return key in SECRET_KEYS or "token" in key


def redact_query(query: str) -> str:
    """`query` (raw, as on the wire) with the value of every secret pair replaced. Pairs are split
    on `;` as well as `&`, a superset of what any parser splits on."""
    if "=" not in query:
        return query
    pieces = re.split(r"([&;])", query)
    for i in range(0, len(pieces), 2):
        key, equals, _ = pieces[i].partition("=")
        if equals and _is_secret_key(key):
            pieces[i] = key + "=" + REDACTED
    return "".join(pieces)


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by ***."""
    if "?" in text:
        text = _QUERY.sub(lambda m: "?" + redact_query(m.group(1)), text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return _CREDENTIAL.sub(_credential, text)


def _credential(match: re.Match[str]) -> str:
    if match.group(1):  # a scheme and its value
        return match.group(1) + match.group(2) + REDACTED
    return match.group(3) + REDACTED + "@"  # a URL's user:password@


def _redact_argument(value: object) -> object:
    if not isinstance(value, str):
        return value
    if "?" in value and not any(c.isspace() for c in value):  # a path with its query, as uvicorn passes it
        path, _, query = value.partition("?")
        return _CREDENTIAL.sub(_credential, _JWT.sub(REDACTED, path)) + "?" + redact_query(query)
    return redact(value)


class RedactSecrets(logging.Filter):
    """Redacts every record it sees, in place (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            if isinstance(record.args, tuple):
                record.args = tuple(_redact_argument(a) for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: _redact_argument(v) for k, v in record.args.items()}
        try:  # the line as it will be written: catches a secret split over arguments too
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
            message = None
        if message is not None and redact(message) != message:
            record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# (logger, message) of records that report a client's mistake at a level meant for the server's.
CLIENT_MISTAKES = frozenset(
    {
        ("uvicorn.error", "Invalid UTF-8 sequence received from client."),  # closed with 1007 already
        ("uvicorn.error", "Invalid HTTP request received."),  # answered 400 already
        ("uvicorn.error", "Unsupported upgrade request."),  # e.g. Upgrade: h2c; served as plain HTTP
    }
)


class ClientMistakes(logging.Filter):
    """One info line, without traceback, for a record in CLIENT_MISTAKES; dropped when the logger
    does not log info. Other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO or (record.name, record.msg) not in CLIENT_MISTAKES:
            return True
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.msg = f"client error: {record.msg}"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


# (logger, message) of records that say less than a line the hub writes itself: logged at debug.
SAID_BY_THE_HUB = frozenset(
    {
        ("uvicorn.error", "connection open"),  # websockets' line; hub/signalr/observer.py logs the connection's
    }
)


class SaidByTheHub(logging.Filter):
    """A record in SAID_BY_THE_HUB at debug (dropped when the logger does not log debug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name, record.msg) not in SAID_BY_THE_HUB:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_logging(level: str, log_format: str = "text") -> dict:
    """A uvicorn log_config: our format (`text`, or `json`: hub/json_log_format.py), the redaction
    filter on every handler, and uvicorn's own records of client mistakes at info."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": RedactSecrets},
            "client_mistakes": {"()": ClientMistakes},
            "said_by_the_hub": {"()": SaidByTheHub},
        },
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "hub.json_log_format.JsonLogFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["client_mistakes", "said_by_the_hub", "redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "": {"handlers": ["default"], "level": level.upper()},
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level.upper(), "propagate": True},
        },
    }
