"""The OpenAPI 3.1 document of every HTTP route, and a docs page rendering it; both without a token.

Written from the same Operation list the router is built from (operations.py) and the same JSON
Schemas validation is checked against (hub/streams/schema.py), so the document cannot list a route
that does not exist, miss one that does, or describe a body differently from what is accepted.
The docs page is plain HTML made here from the document: no third-party JavaScript.
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..streams import schema
from . import access, codec
from .operations import ERROR, HEADERS, RATE_LIMIT_HEADERS, Operation, Param, Reply, Schema, error_replies

#: Schemas given a name under components/schemas; every use of the same object becomes a $ref.
COMPONENTS: dict[str, Schema] = {
    "Error": ERROR,
    "Name": schema.NAME,
    "Event": schema.EVENT,
    "StoredEvent": schema.EVENT_OUT,
    "ParameterData": schema.PARAMETER_DATA,
    "StoredParameterData": schema.PARAMETER_DATA_OUT,
    "StreamProperties": schema.STREAM_PROPERTIES,
    "EventDefinitions": schema.EVENT_DEFINITIONS,
    "ParameterDefinitions": schema.PARAMETER_DEFINITIONS,
    "StreamInfo": schema.STREAM_INFO,
    "TopicSummary": schema.TOPIC_SUMMARY,
    "QuarantinedRow": schema.QUARANTINED_ROW,
    "BatchResult": schema.BATCH_RESULT,
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
    "accessToken": {"type": "apiKey", "in": "query", "name": "access_token", "description": "?access_token=<token>"},
    "tinybirdToken": {"type": "apiKey", "in": "query", "name": "token", "description": "?token=<token> (Tinybird's form)"},
    "sharedAccessSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "SharedAccessSignature sr=<uri>&sig=<sig>&se=<expiry>&skn=<name>, signed with a hub token",
    },
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "bearer": [{"bearer": []}, {"accessToken": []}],
    "tinybird": [{"bearer": []}, {"tinybirdToken": []}],
    "eventhubs": [{"bearer": []}, {"sharedAccessSignature": []}],
}

NEGOTIATE_REPLY: Schema = {
    "type": "object",
    "properties": {
        "connectionId": {"type": "string"},
        "connectionToken": {"type": "string"},
        "negotiateVersion": {"type": "integer"},
        "availableTransports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["transport", "transferFormats"],
                "properties": {"transport": {"type": "string"}, "transferFormats": {"type": "array", "items": {"type": "string"}}},
            },
        },
        "error": {"type": "string"},
    },
}


def negotiate_operation(hub_path: str) -> Operation:
    """The SignalR negotiate route (served by hub/signalr), documented here with the rest."""
    return Operation(
        "POST", f"{hub_path}/negotiate", None, "SignalR negotiate", "SignalR Writer hub", access="any-valid-token",
        params=(Param("negotiateVersion", "query", {"type": "integer", "minimum": 0}, "0 or 1"),),
        replies={200: Reply("Where and how to connect", NEGOTIATE_REPLY), **error_replies(401)},
        description=f"Then connect to {hub_path} with a transport and invoke the Writer methods "
        "(CreateStream, UpdateStream, CloseStream, SendEventData, SendParameterData); each call is checked "
        "against the token's scopes on its own.",
        operation_id="signalr_negotiate",
    )


def signalr_transport_operations(hub_path: str) -> list[Operation]:
    """Server-Sent Events and long polling on the hub path (served by hub/signalr), documented."""
    connection = Param("id", "query", {"type": "string"}, "the connectionToken (or connectionId) from negotiate", required=True)
    text = {"type": "string"}
    common = {
        400: Reply("No connection id, or a transport change mid-connection", text, media="text/plain"),
        404: Reply("No connection with that id", text, media="text/plain"),
        **error_replies(401),
    }
    tag = "SignalR Writer hub"
    return [
        Operation("GET", hub_path, None, "Long poll, or (Accept: text/event-stream) open the Server-Sent Events stream", tag,
                  access="any-valid-token", params=(connection,),
                  replies={200: Reply("Hub-protocol bytes for the client", {"type": "string", "format": "binary"},
                                      media="application/octet-stream"),
                           204: Reply("The connection ended"), 409: Reply("Another transport is attached", text, media="text/plain"),
                           **common},
                  operation_id="signalr_receive"),
        Operation("POST", hub_path, None, "Send hub-protocol bytes (Server-Sent Events and long polling)", tag,
                  access="any-valid-token", params=(connection,), body={"application/octet-stream": {"type": "string", "format": "binary"}},
                  body_required=False,
                  replies={200: Reply("Taken"), 405: Reply("Not on a WebSocket connection", text, media="text/plain"),
                           413: Reply("Too much data before a transport attached", text, media="text/plain"), **common},
                  operation_id="signalr_send"),
        Operation("DELETE", hub_path, None, "End a long-polling connection", tag, access="any-valid-token", params=(connection,),
                  replies={202: Reply("Ended"), **common}, operation_id="signalr_end"),
    ]


class OpenApi:
    """GET /openapi.json and GET /docs for a list of operations (including these two)."""

    def __init__(self, title: str, version: str):
        self.title = title
        self.version = version
        self._operations: list[Operation] = []
        self._document: dict[str, Any] | None = None

    @property
    def operations(self) -> list[Operation]:
        return [
            Operation("GET", "/openapi.json", self.openapi_json, "This document", "Service", auth="none", access="none",
                      replies={200: Reply("The OpenAPI 3.1 document", {"type": "object"})}, operation_id="openapi"),
            Operation("GET", "/docs", self.docs, "This document as a web page", "Service", auth="none", access="none",
                      replies={200: Reply("HTML", {"type": "string"}, media="text/html")}, operation_id="docs"),
        ]

    def describe(self, operations: list[Operation]) -> None:
        """Set what the document covers: every operation the app serves or documents."""
        self._operations = list(operations)
        self._document = build_document(self._operations, self.title, self.version)  # fails at start, not later

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = build_document(self._operations, self.title, self.version)
        return self._document

    def document_for(self, request: Request) -> dict[str, Any]:
        """The document with `servers` naming where this request came in: behind a proxy under
        /prefix (--root-path), the paths are relative to that prefix."""
        return with_server(self.document, request.scope.get("root_path", ""))

    async def openapi_json(self, request: Request) -> Response:
        return codec.json_response(self.document_for(request))

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(render_html(self.document_for(request)))


def with_server(document: dict[str, Any], root_path: str) -> dict[str, Any]:
    """The document with `servers: [{"url": root_path}]`: a relative URL, resolved against where the
    document was fetched, so the scheme and host stay the proxy's and only the prefix is added."""
    if not root_path:
        return document  # built with servers "/"
    return {**document, "servers": [{"url": root_path}]}


# --- the document --------------------------------------------------------------------------------


def build_document(operations: list[Operation], title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for op in operations:
        operation_id = op.operation_id or getattr(op.endpoint, "__name__", "") or f"{op.method.lower()}_{op.path}"
        if operation_id in seen_ids:
            raise ValueError(f"operationId {operation_id!r} is used twice; give one Operation an operation_id")
        seen_ids.add(operation_id)
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, operation_id)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "A self-hosted answer to the Quix Streaming Writer API: the Quix HTTP routes, a read API, "
                "drop-in routes for Tinybird and Event Hubs senders, and a SignalR hub at /hub. Errors are "
                '{"error": "…"}. With --rate-limit, every response of a route that names a topic carries '
                "X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset."
            ),
        },
        "servers": [{"url": "/"}],  # under a proxy's prefix (--root-path): with_server() per request
        "paths": _with_refs(paths),
        "components": {
            "schemas": {name: _with_refs(value, skip=value) for name, value in COMPONENTS.items()},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _with_refs(value: Any, skip: Any = None) -> Any:
    """A copy of `value` where every COMPONENTS schema object (by identity) is a $ref to it."""
    named = {id(schema_): name for name, schema_ in COMPONENTS.items()}

    def walk(item: Any) -> Any:
        if item is not skip and id(item) in named:
            return {"$ref": f"#/components/schemas/{named[id(item)]}"}
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def _operation(op: Operation, operation_id: str) -> dict[str, Any]:
    rate_limited = op.topic is not None
    replies = dict(op.replies)
    if rate_limited:
        replies.update(error_replies(429))
    if access.refuses(op.access):
        # Tinybird's route answers a bad token with 403 too: one reply says both
        said = f"{replies[403].description} Or: " if 403 in replies else ""
        replies[403] = Reply(said + access.REFUSED, ERROR)
    out: dict[str, Any] = {"operationId": operation_id, "summary": op.summary, "tags": [op.tag]}
    out["description"] = f"{access.needs(op.access)} {op.description}".strip()
    out["security"] = _SECURITY[op.auth]
    if op.params:
        out["parameters"] = [_parameter(p) for p in op.params]
    if op.body:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {media: {"schema": schema} for media, schema in op.body.items()},
        }
    # Auth comes before the rate limit: a 401/403 spends no budget and carries no X-RateLimit-*.
    out["responses"] = {
        str(status): _response(reply, rate_limited and status not in (401, 403)) for status, reply in sorted(replies.items())
    }
    return out


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required or param.where == "path"}
    if param.description:
        out["description"] = param.description
    out["schema"] = param.schema
    return out


def _response(reply: Reply, rate_limited: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    names = list(reply.headers)
    if rate_limited:
        names += [h for h in RATE_LIMIT_HEADERS if h not in names]
    if names:
        out["headers"] = {name: HEADERS[name] for name in names}
    if reply.schema is not None:
        out["content"] = {reply.media: {"schema": reply.schema}}
    return out


# --- the page ------------------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1b1b}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;margin-top:2.2rem}
section{border:1px solid #e2e2e2;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace}
.GET{color:#1565c0}.POST{color:#2e7d32}.PUT{color:#ef6c00}.DELETE{color:#c62828}
code,pre{font-family:ui-monospace,monospace;font-size:13px} pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-height:24rem}
table{border-collapse:collapse} td,th{border:1px solid #e2e2e2;padding:.2rem .5rem;text-align:left;vertical-align:top}
details{margin:.3rem 0} summary{cursor:pointer}
"""


def render_html(document: dict[str, Any]) -> str:
    e = html.escape
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(info['title'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(info['title'])}</h1><p>Version {e(info['version'])} · <a href='openapi.json'>openapi.json</a></p>",
        f"<p>{e(info['description'])}</p>",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        parts.append(f"<h2>{e(tag)}</h2>")
        for method, path, op in ops:
            parts.append(f"<section id='{e(op['operationId'])}'><div><span class='m {method}'>{method}</span>"
                         f"<code>{e(path)}</code> — {e(op['summary'])}</div>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            schemes = [name for alternative in op.get("security", []) for name in alternative]
            parts.append(f"<p>Auth: {e(', '.join(schemes) or 'none')}</p>")
            if op.get("parameters"):
                parts.append("<table><tr><th>name</th><th>in</th><th>schema</th><th></th></tr>")
                for p in op["parameters"]:
                    required = " (required)" if p.get("required") else ""
                    parts.append(f"<tr><td><code>{e(p['name'])}</code>{required}</td><td>{e(p['in'])}</td>"
                                 f"<td><code>{e(_compact(p['schema']))}</code></td><td>{e(p.get('description', ''))}</td></tr>")
                parts.append("</table>")
            body = op.get("requestBody")
            if body:
                for media, content in body["content"].items():
                    parts.append(f"<details><summary>Body <code>{e(media)}</code></summary><pre>{e(_pretty(content['schema']))}</pre></details>")
            for status, reply in op["responses"].items():
                headers = ", ".join(reply.get("headers", {}))
                extra = f" · headers: {e(headers)}" if headers else ""
                content = reply.get("content")
                if content:
                    for media, c in content.items():
                        parts.append(f"<details><summary><b>{e(status)}</b> {e(reply['description'])} <code>{e(media)}</code>{extra}"
                                     f"</summary><pre>{e(_pretty(c['schema']))}</pre></details>")
                else:
                    parts.append(f"<div><b>{e(status)}</b> {e(reply['description'])}{extra}</div>")
            parts.append("</section>")
    parts.append("<h2>Schemas</h2><p>What <code>$ref</code> names above.</p>")
    for name, component in document.get("components", {}).get("schemas", {}).items():
        parts.append(f"<details id='schema-{e(name)}'><summary><code>{e(name)}</code></summary><pre>{e(_pretty(component))}</pre></details>")
    parts.append("</body></html>")
    return "".join(parts)


def _compact(schema: Any) -> str:
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))


def _pretty(schema: Any) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2)
