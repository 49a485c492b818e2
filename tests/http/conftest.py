"""Fixtures for the HTTP ingestion tests (tests/conftest.py has the hub process machinery).

- `ingest_hub`: one hub for the module's session, sqlite store (so wait=true/false differ), a
  1 MiB body limit (so limit tests stay small), a second token, and a rate limit high enough never
  to refuse but on, so every response carries the X-RateLimit-* headers the document describes.
- `limited_hub`: a hub with --rate-limit 1 (a budget of one request, back after a second: slow
  enough that a loaded machine still sends two requests inside it), for the 429 tests.

(No __init__.py here on purpose: a package named `http` would shadow the standard library's.)
"""

from __future__ import annotations

from typing import Iterator

import pytest

TOKEN = "http-e2e-token-5a3e91d2"  # distinctive, so a leak into logs is easy to grep for
OTHER_TOKEN = "http-e2e-other-token-7c1d0b"
MAX_BODY = 1_048_576


@pytest.fixture(scope="session")
def _http_hubs(_shared_hub_factory, tmp_path_factory) -> Iterator:
    # A factory of our own (the shared one's class), so the session's shared_hub stays the default one.
    factory = type(_shared_hub_factory)(tmp_path_factory.mktemp("http-hubs"))
    try:
        yield factory
    finally:
        factory.close()


def _hub(factory, name: str, *args: str):
    servers = {getattr(s, "_name", None): s for s in factory.servers}
    server = servers.get(name)
    if server is None or not server.alive():
        server = factory(*args, tokens=[TOKEN, OTHER_TOKEN])
        server._name = name
    return server


@pytest.fixture
def ingest_hub(_http_hubs, request):
    server = _hub(_http_hubs, "ingest", "--store", "sqlite", "--max-body-size", str(MAX_BODY), "--rate-limit", "100000")
    request.node.__dict__.setdefault("_hub_servers", []).append(server)
    return server


@pytest.fixture
def limited_hub(_http_hubs, request):
    server = _hub(_http_hubs, "limited", "--rate-limit", "1")
    request.node.__dict__.setdefault("_hub_servers", []).append(server)
    return server
