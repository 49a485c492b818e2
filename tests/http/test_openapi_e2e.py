"""/openapi.json and /docs: served without a token, naming exactly the routes the app serves; and
schemathesis against the live hub: no 5xx, every response (status, headers, body) as documented.

Bounded: a few examples per operation (SCHEMATHESIS_EXAMPLES), so the whole run stays well under a
minute on 2 cores.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from hub.app import build_app
from hub.config import Settings
from hub.http_api.eventhubs import ATOM_TYPE, BATCH_TYPE

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    rows = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


schemathesis.serializer.alias(BATCH_TYPE, "application/json")


@schemathesis.serializer(ATOM_TYPE)
def _atom(ctx, value) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def test_the_document_and_the_page_need_no_token(ingest_hub):
    with httpx.Client(base_url=ingest_hub.url, timeout=10) as client:
        document = client.get("/openapi.json")
        page = client.get("/docs")
    assert document.status_code == 200 and document.headers["content-type"] == "application/json"
    assert document.json()["openapi"].startswith("3.1")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text  # no third-party (or any) JavaScript
    for path in document.json()["paths"]:
        assert f"<code>{path}</code>" in page.text


def test_every_route_is_documented_and_every_documented_route_exists():
    app = build_app(Settings(store="memory", rate_limit=1.0), ["t"])
    document = app.state.openapi.document
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented


def test_rate_limited_operations_document_429_and_the_headers():
    document = build_app(Settings(store="memory"), ["t"]).state.openapi.document
    events = document["paths"]["/topics/{topic}/streams/{streamId}/events/data"]["post"]
    assert {"200", "202", "400", "401", "413", "415", "429", "503"} <= set(events["responses"])
    assert set(events["responses"]["200"]["headers"]) == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert "Retry-After" in events["responses"]["429"]["headers"]
    assert "429" not in document["paths"]["/topics"]["get"]["responses"]  # names no topic: not limited


def test_the_live_document_is_the_one_under_test(ingest_hub):
    with httpx.Client(base_url=ingest_hub.url, timeout=10) as client:
        assert client.get("/openapi.json").json() == DOCUMENT


# The document is built in process at collection time (the same code the live hub runs; checked just
# above), so pytest has one test per operation; each example is sent to the live hub.
DOCUMENT = json.loads(json.dumps(build_app(Settings(store="memory", rate_limit=100000.0), ["t"]).state.openapi.document))
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_live_hub_answers_as_documented(case, ingest_hub):
    case.call_and_validate(base_url=ingest_hub.url, headers=ingest_hub.auth_headers, checks=CHECKS, timeout=10)
