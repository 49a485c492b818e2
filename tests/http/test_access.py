"""What an operation needs of the token (hub/http_api/access.py), in process: the guard's order (401,
403, 429, the handler), an admin-only route (none is served today: /metrics will be one), and the
declarations that cannot be made (an open route with a scope, a topic scope without a topic)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.app import build_app
from hub.auth.authenticator import AuthConfig, Authenticator
from hub.config import Settings
from hub.http_api import errors
from hub.http_api.access import REFUSED, needs
from hub.http_api.guard import Guard
from hub.http_api.operations import Operation, build_routes, path_topic
from hub.ratelimit import RateLimiter

ADMIN, CARS = "admin-token-1", "cars-token-2"


class Client:
    def __init__(self, app: Starlette, handled: list[str]):
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")
        self.handled = handled

    async def call(self, method: str, path: str, token: str | None) -> tuple[int, dict]:
        response = await self.http.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {})
        return response.status_code, response.json()


@pytest.fixture
async def client(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ADMIN}\n{CARS} name=car-17 write:cars\n")
    auth = Authenticator(AuthConfig(token_file=str(tokens)))
    handled: list[str] = []

    async def handler(request: Request) -> Response:
        handled.append(request.url.path)
        return JSONResponse({"ok": True})

    operations = [
        Operation("POST", "/t/{topic}", handler, "a write", "test", access="write", topic=path_topic),
        Operation("GET", "/admin-only", handler, "no topic", "test"),  # access not said: admin
    ]
    app = Starlette(routes=build_routes(operations, Guard(auth, RateLimiter(0.01)).wrap), exception_handlers=errors.HANDLERS)
    test_client = Client(app, handled)
    async with test_client.http:
        yield test_client


async def test_401_then_403_then_429_then_the_handler(client: Client) -> None:
    for path in ("/t/boats", "/t/cars"):  # who before may; neither spends budget
        assert (await client.call("POST", path, None))[0] == 401
        assert (await client.call("POST", path, "wrong"))[0] == 401
    for _ in range(3):  # refused: no budget spent, the handler never runs
        assert await client.call("POST", "/t/boats", CARS) == (403, {"error": "this token lacks write:boats"})
    assert client.handled == []
    assert await client.call("POST", "/t/cars", CARS) == (200, {"ok": True})
    assert (await client.call("POST", "/t/cars", CARS))[0] == 429
    assert client.handled == ["/t/cars"]


async def test_a_route_without_a_topic_needs_admin(client: Client) -> None:
    assert await client.call("GET", "/admin-only", CARS) == (403, {"error": "this token lacks admin:*"})
    assert await client.call("GET", "/admin-only", ADMIN) == (200, {"ok": True})


async def _noop(request: Request) -> Response:
    return Response()


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"auth": "none"}, "auth 'none' and access 'none' go together"),
    ({"access": "none"}, "auth 'none' and access 'none' go together"),
    ({"access": "write"}, "access 'write' needs the topic the request names"),
    ({"access": "read"}, "access 'read' needs the topic the request names"),
])
def test_declarations_that_cannot_be_made(kwargs: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Operation("GET", "/x", _noop, "x", "test", **kwargs)


def test_the_document_says_what_each_operation_needs() -> None:
    document = build_app(Settings(store="memory"), ["t"]).state.openapi.document
    for path, item in document["paths"].items():
        for method, op in item.items():
            said = [access for access in ("read", "write", "admin", "listing", "any-valid-token", "none")
                    if op["description"].startswith(needs(access))]
            assert len(said) == 1, (method, path, op["description"])
            refuses = said[0] in ("read", "write", "admin")
            assert ("403" in op["responses"]) == (refuses or path == "/v0/events"), (method, path)
            if refuses:
                assert op["responses"]["403"]["description"].lower().endswith(REFUSED.lower()), (method, path)
                assert op["responses"]["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert document["paths"]["/ready"]["get"]["security"] == []  # open, and says why
    assert "probe needs no token" in document["paths"]["/ready"]["get"]["description"]
    assert document["paths"]["/whoami"]["get"]["description"] == needs("none")
    assert document["paths"]["/whoami"]["get"]["security"] == []  # open: it describes whoever calls
