"""The live console: a static page at `/` (assets under /console/) that lists streams (virtualised,
with live sparklines), tails a stream live over the Reader hub, sends test events over the Writer
hub, and shows a stream's page: details, a live chart with history, the topic's quarantine.

Loading it needs no token: the page asks for one, keeps it in sessionStorage and sends it with its
API and hub calls. Plain HTML/CSS/JS, no build step: static/signalr.js is the project's own small
SignalR JSON client over WebSockets; the one third-party file is uPlot (static/vendor/uplot/, MIT,
see its VERSION). protocol-notes/console.md describes the page.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..http_api.operations import Operation, Reply

STATIC = Path(__file__).resolve().parent / "static"

# Only our own scripts and styles run on the page; it talks to its own origin only.
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=HEADERS)


def console_operation() -> Operation:
    """`GET /` in the OpenAPI document (the assets under /console/ are static files, not operations)."""
    return Operation("GET", "/", None, "The live console page (asks for the token itself)", "Service", auth="none", access="none",
                     replies={200: Reply("HTML", {"type": "string"}, media="text/html")}, operation_id="console")


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount("/console", app=StaticFiles(directory=STATIC), name="console"),
    ]
