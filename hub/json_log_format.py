"""`--log-format json`: one JSON object a line, for log collectors.

Every line has `ts` (UTC, ISO 8601, milliseconds), `level`, `logger` and `msg`, and where the record
knows them: `connection_id` (the non-secret id a connection is logged by, never its token), `user`
(the name the hub gives a token, never the token), `hub`, `method`, `transport`, `remote`, `path`,
`duration_ms`, `status`, `reason`, and `exc` (a traceback). The hub passes these as `extra=` fields;
uvicorn's access and WebSocket lines are read from their arguments. The text is what the redaction
filter (hub/logs.py) left: it runs before any formatter, and string fields are redacted here again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson

from .logs import redact

#: Fields taken from a record's attributes (`extra=`), in this order after ts, level, logger, msg.
FIELDS = ("connection_id", "user", "hub", "method", "transport", "remote", "path", "duration_ms", "status", "reason")

_ACCESS = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access line: client, method, path, HTTP version, status
_WEBSOCKET = '%s - "WebSocket %s"'  # uvicorn's WebSocket upgrade lines: client, path[, status]


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_uvicorn_fields(record))
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def _uvicorn_fields(record: logging.LogRecord) -> dict[str, Any]:
    """remote, method, path and status of uvicorn's access and WebSocket lines (already redacted)."""
    args = record.args
    if not isinstance(args, tuple) or not isinstance(record.msg, str):
        return {}
    if record.msg == _ACCESS and len(args) == 5:
        return {"remote": args[0], "method": args[1], "path": args[2], "status": args[4]}
    if record.msg.startswith(_WEBSOCKET) and len(args) >= 2:
        fields = {"remote": args[0], "method": "WebSocket", "path": args[1]}
        if len(args) > 2:
            fields["status"] = args[2]
        elif record.msg.endswith("[accepted]"):
            fields["status"] = 101
        return fields
    return {}
