"""Scopes on every HTTP route (issue 14), against the real hub process with a --token-file.

The walk takes the operations from the live hub's /openapi.json, so a route added later is walked
too: with a token scoped to another topic each one is a 403 naming the missing scope, except the
listings (200, filtered), the open routes and those that need only a valid token (negotiate, the
SignalR transports); with the right scope none is refused. Then: the drop-ins' variants,
/whoami, and that a refused request spends no rate-limit budget and leaves no idempotency record.
(The hubs' methods are walked by the SignalR side's tests.)
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import jwt
import pytest
from e2e.harness import HubServerFactory, report_servers
from e2e.support import curl, events_url, make_events, needs_curl

from hub.http_api import sas

pytestmark = pytest.mark.e2e

TOPIC = "cars"  # what the walk's tokens are scoped to, or not
OTHER = "boats"
TOKENS = {  # token -> its line's name and scopes
    "cars-token-5e1f0c": "name=car-17 write:cars read:cars",
    "boats-token-9a2d47": "name=boat-1 write:boats read:boats",
    "viewer-token-c3b8e0": "name=viewer read:cars",
    "plain-token-77d1aa": "",  # no scopes: admin, as before scopes existed
}
CARS, BOATS, VIEWER, PLAIN = TOKENS
JWT_SECRET = "a-test-secret-of-at-least-32-bytes-for-hs256"

# What the walk expects of each operation that is not a 403 with another topic's token, by operationId.
LISTINGS = {"list_topics", "list_streams"}
VALID_TOKEN_ONLY = {"signalr_negotiate", "signalr_receive", "signalr_send", "signalr_end",
                    "reader_signalr_negotiate", "reader_signalr_receive", "reader_signalr_send", "reader_signalr_end"}
#: Where a request names its topic: the path's {topic} or {hub} (Event Hubs), Tinybird's ?name=.
TOPIC_PARAMS = {"topic", "hub", "name"}
REFUSED = "The token lacks the scope this operation needs (the error names it)"


def write_token_file(path: Path, lines: dict[str, str]) -> Path:
    path.write_text("".join(f"{token}  {rest}\n" for token, rest in lines.items()))
    return path


@pytest.fixture(scope="module")
def scoped_hub(tmp_path_factory):
    """An admin --token, the token file above, and HS256 JWTs."""
    base = tmp_path_factory.mktemp("scoped-hub")
    factory = HubServerFactory(base)
    token_file = write_token_file(base / "tokens", TOKENS)
    try:
        yield factory("--token-file", str(token_file), "--jwt-secret", JWT_SECRET)
    finally:
        factory.close()


@pytest.fixture(autouse=True)
def _report(request):
    if "scoped_hub" in request.fixturenames:
        report_servers(request, [request.getfixturevalue("scoped_hub")])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the walk ------------------------------------------------------------------------------------


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def request_for(method: str, path: str, op: dict, topic: str) -> tuple[str, dict[str, str], bytes]:
    """A request for `op` naming `topic`: path and required query parameters filled in, a small body."""
    query: dict[str, str] = {}
    for param in op.get("parameters", []):
        value = topic if param["name"] in TOPIC_PARAMS else {"streamId": "s1", "id": "no-such-connection"}.get(param["name"], "1")
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", value)
        elif param["in"] == "query" and param.get("required"):
            query[param["name"]] = value
    assert "{" not in path, f"{method} {path}: a path parameter the walk cannot fill"
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    body = b"[]" if method in ("POST", "PUT") else b""
    return url, {"Content-Type": "application/json"} if body else {}, body


def names_a_topic(op: dict) -> bool:
    return any(p["name"] in TOPIC_PARAMS and p["in"] in ("path", "query") for p in op.get("parameters", []))


def test_every_operation_refuses_a_token_scoped_to_another_topic(scoped_hub):
    with httpx.Client(base_url=scoped_hub.url, timeout=10) as client:
        document = client.get("/openapi.json").json()
        # data in both topics, so a listing that forgot to filter would show it
        for topic in (TOPIC, OTHER):
            assert client.post(events_url(topic, "s1"), json=make_events(1), headers=bearer(scoped_hub.token)).status_code == 200
        walked = []
        for method, path, op in operations(document):
            name = op["operationId"]
            url, headers, body = request_for(method, path, op, TOPIC)
            wrong = client.request(method, url, headers={**headers, **bearer(BOATS)}, content=body)
            right_token = CARS if names_a_topic(op) else scoped_hub.token  # no topic: admin:* is the right scope
            right = client.request(method, url, headers={**headers, **bearer(right_token)}, content=body)
            where = f"{method} {path} ({name})"
            walked.append(name)
            assert right.status_code not in (401, 403), (where, right.status_code, right.text)
            if op["security"] == []:  # open
                assert op["description"].startswith("Open: no token needed."), where
                assert wrong.status_code not in (401, 403), (where, wrong.status_code)
            elif name in LISTINGS:
                assert wrong.status_code == 200, (where, wrong.status_code, wrong.text)
                assert TOPIC not in {t["topic"] for t in wrong.json()} if name == "list_topics" else wrong.json() == [], where
                assert right.json() != [], where
            elif name in VALID_TOKEN_ONLY:
                assert wrong.status_code not in (401, 403), (where, wrong.status_code, wrong.text)
            else:
                action = "admin" if not names_a_topic(op) else ("read" if method == "GET" else "write")
                scope = "admin:*" if action == "admin" else f"{action}:{TOPIC}"
                assert (wrong.status_code, wrong.json()) == (403, {"error": f"this token lacks {scope}"}), where
                assert "X-RateLimit-Limit" not in wrong.headers, where
                assert op["responses"]["403"]["description"].endswith(REFUSED[1:]), where
                assert f"Scope: {scope if action == 'admin' else action + ':<topic>'}" in op["description"], where
    assert {"list_topics", "send_events", "tinybird_send_events", "signalr_negotiate"} <= set(walked)


def test_listings_show_only_readable_topics(scoped_hub):
    with httpx.Client(base_url=scoped_hub.url, timeout=10) as client:
        for topic in (TOPIC, OTHER):
            assert client.post(events_url(topic, "s1"), json=make_events(1), headers=bearer(scoped_hub.token)).status_code == 200
        topics = {token: {t["topic"] for t in client.get("/topics", headers=bearer(token)).json()} for token in TOKENS}
        assert topics[CARS] == topics[VIEWER] == {TOPIC}
        assert topics[BOATS] == {OTHER}
        assert {TOPIC, OTHER} <= topics[PLAIN]
        assert "s1" in [s["streamId"] for s in client.get(f"/topics/{TOPIC}/streams", headers=bearer(VIEWER)).json()]
        assert client.get(f"/topics/{TOPIC}/streams", headers=bearer(BOATS)).json() == []
        # a read-only token reads, and is refused writes with the scope it lacks
        assert client.get(events_url(TOPIC, "s1"), headers=bearer(VIEWER)).status_code == 200
        refused = client.post(events_url(TOPIC, "s1"), json=make_events(1), headers=bearer(VIEWER))
        assert (refused.status_code, refused.json()) == (403, {"error": "this token lacks write:cars"})


# --- the drop-ins --------------------------------------------------------------------------------


@needs_curl
def test_tinybird_name_is_the_topic(scoped_hub):
    url = f"{scoped_hub.url}/v0/events"
    row = '{"date": "2020-04-05 00:05:38", "city": "Chicago"}'
    status, _, body = curl("-H", "Authorization: Bearer not-a-token", "-d", row, f"{url}?name={TOPIC}")
    assert (status, body) == (403, '{"error":"Forbidden: a valid token is required (Authorization: Bearer <token> or ?token=<token>)."}')
    status, headers, body = curl("-H", f"Authorization: Bearer {BOATS}", "-d", row, f"{url}?name={TOPIC}")
    assert (status, body) == (403, '{"error":"this token lacks write:cars"}')
    assert "x-ratelimit-limit" not in headers
    status, _, body = curl("-d", row, f"{url}?name={TOPIC}&token={VIEWER}")  # ?token= as Tinybird senders pass it
    assert (status, body) == (403, '{"error":"this token lacks write:cars"}')
    status, _, body = curl("-d", row, f"{url}?name={TOPIC}&token={CARS}&wait=true")
    assert (status, body) == (200, '{"successful_rows":1,"quarantined_rows":0}')


@needs_curl
def test_event_hubs_hub_is_the_topic_and_a_signature_has_its_tokens_scopes(scoped_hub):
    expiry = int(time.time()) + 600
    ns = "https://ns.servicebus.windows.net"

    def send(hub: str, authorization: str) -> tuple[int, str]:
        status, _, body = curl("-X", "POST", f"{scoped_hub.url}/{hub}/messages", "-H", f"Authorization: {authorization}",
                               "--data-binary", '{"DeviceId":"dev-01","Temperature":"37.0"}')
        return status, body

    assert send(TOPIC, sas.sign(f"{ns}/{TOPIC}", CARS, "car-17", expiry)) == (201, "")
    assert send(TOPIC, sas.sign(f"{ns}/{TOPIC}", BOATS, "boat-1", expiry)) == (403, '{"error":"this token lacks write:cars"}')
    assert send(TOPIC, sas.sign(ns, VIEWER, "viewer", expiry)) == (403, '{"error":"this token lacks write:cars"}')
    assert send(TOPIC, f"Bearer {BOATS}") == (403, '{"error":"this token lacks write:cars"}')
    assert send(OTHER, sas.sign(ns, BOATS, "boat-1", expiry)) == (201, "")
    status, body = send(TOPIC, sas.sign(f"{ns}/{TOPIC}", "not-a-hub-token", "k", expiry))
    assert status == 401 and "not signed with a token of this hub" in body


# --- /whoami --------------------------------------------------------------------------------------


def test_whoami(scoped_hub):
    exp = int(time.time()) + 600
    token = jwt.encode({"sub": "dashboard", "exp": exp, "scope": "read:cars read:boats"}, JWT_SECRET, algorithm="HS256")
    with httpx.Client(base_url=scoped_hub.url, timeout=10) as client:
        def whoami(token: str | None) -> httpx.Response:
            return client.get("/whoami", headers=bearer(token) if token else {})

        assert whoami(CARS).json() == {"user": "token:car-17", "scopes": ["write:cars", "read:cars"], "admin": False, "expiresAt": None}
        assert whoami(VIEWER).json() == {"user": "token:viewer", "scopes": ["read:cars"], "admin": False, "expiresAt": None}
        plain = whoami(PLAIN).json()
        assert plain["scopes"] == ["admin:*"] and plain["admin"] is True and plain["user"].startswith("token:")
        assert whoami(token).json() == {"user": "jwt:dashboard", "scopes": ["read:cars", "read:boats"], "admin": False, "expiresAt": exp}
        for secret in (CARS, PLAIN, token):
            assert secret not in whoami(secret).text
        nobody = {"user": None, "scopes": [], "admin": False, "expiresAt": None}  # open: no token is nobody
        for unknown in (None, "not-a-token", jwt.encode({"sub": "x", "exp": int(time.time()) - 5, "scope": "read:*"},
                                                        JWT_SECRET, algorithm="HS256")):
            answer = whoami(unknown)
            assert (answer.status_code, answer.json()) == (200, nobody), unknown


# --- a refused request costs nothing -------------------------------------------------------------


def test_a_refused_request_spends_no_budget_and_leaves_no_idempotency_record(hub_server, tmp_path, wait_for):
    # One request per 100 s per (user, topic): a refusal that spent budget would turn the next
    # allowed request on the same pair into a 429.
    token_file = write_token_file(tmp_path / "tokens", {CARS: "name=car-17 read:boats"})
    hub = hub_server("--token-file", str(token_file), "--rate-limit", "0.01")
    key = {"X-Idempotency-Key": "refused-first-then-allowed"}
    events = make_events(1)
    with hub.http(headers=bearer(CARS)) as client:
        for topic in (OTHER, "ships"):
            for _ in range(3):
                refused = client.post(events_url(topic, "s1"), json=events, headers=key)
                assert (refused.status_code, refused.json()) == (403, {"error": f"this token lacks write:{topic}"})
                assert not any(h.lower().startswith("x-ratelimit") for h in refused.headers)
        # the budget of (car-17, boats) is whole: this read takes its only request
        read = client.get(f"/topics/{OTHER}/quarantine")
        assert read.status_code == 200 and read.headers["X-RateLimit-Remaining"] == "0"
        assert client.get(f"/topics/{OTHER}/quarantine").status_code == 429

        # the token gains write:ships; the key the refused requests carried was never recorded
        write_token_file(token_file, {CARS: "name=car-17 read:boats write:ships read:ships"})
        hub.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "write:ships" in client.get("/whoami").json()["scopes"], timeout=10, message="the reload")
        stored = client.post(events_url("ships", "s1"), json=events, headers=key)
        assert stored.status_code == 200, stored.text
        assert "X-Idempotency-Replayed" not in stored.headers and stored.headers["X-RateLimit-Remaining"] == "0"
    assert [e["id"] for e in hub.get_events("ships", "s1")] == [e["id"] for e in events]  # stored once
