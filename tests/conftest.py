"""Shared test fixtures, over the process harness in tests/e2e/harness.py.

- `hub_server`: a factory that starts the REAL hub (`python -m hub serve`) as a child process on
  a free port with a temporary data dir, a known token and short timers, waits for `/health`,
  captures its stdout/stderr to files, and stops it at teardown (SIGTERM, then SIGKILL).
- `shared_hub`: one such server for the whole session, for tests that only need *a* hub; use
  your own topic/stream names (`unique` fixture) so tests do not see each other's data.
- `node`: runs a driver script from tests/node (the real `@microsoft/signalr`) with a JSON spec
  and returns its parsed JSON result.
- `redis_server` (one for the session) and `own_redis` (one for the test, to stop and restart).
- `wait_for` / `async_wait_for`: poll a condition until it holds or a timeout passes.

When a test fails, the tail of every hub process it used is added to the failure report.
Test modules import the classes and helpers from `e2e.harness` (`.harness` inside tests/e2e).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# tests/ is on sys.path (pytest's default "prepend" import mode puts a conftest's folder there).
from e2e.harness import (
    HubServer,
    HubServerFactory,
    NodeRunner,
    RedisServer,
    async_wait_for,
    report_servers,
    wait_for,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test against the real server process and real clients")


# --- the hub ----------------------------------------------------------------------------------------


@pytest.fixture
def hub_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HubServerFactory]:
    """Factory: `srv = hub_server("--max-message-size", "1024")` starts a fresh hub process."""
    factory = HubServerFactory(tmp_path)
    request.node.__dict__.setdefault("_hub_factories", []).append(factory)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def _shared_hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServerFactory]:
    factory = HubServerFactory(tmp_path_factory.mktemp("shared-hub"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def shared_hub(_shared_hub_factory: HubServerFactory, request: pytest.FixtureRequest) -> HubServer:
    """A hub shared by the session (restarted if an earlier test left it dead)."""
    servers = _shared_hub_factory.servers
    if not servers or not servers[-1].alive():
        _shared_hub_factory()
    server = _shared_hub_factory.servers[-1]
    report_servers(request, [server])
    return server


@pytest.fixture
def unique() -> Callable[[str], str]:
    """`unique("topic")` -> "topic-3f2a9c1e": names no other test uses."""
    return lambda prefix="x": f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    servers = list(item.__dict__.get("_hub_servers", []))
    for factory in item.__dict__.get("_hub_factories", []):
        servers.extend(factory.servers)
    for server in servers:
        report.sections.append((f"hub server :{server.port}", server.tail()))


# --- helpers as fixtures ----------------------------------------------------------------------------


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(name="async_wait_for")
def async_wait_for_fixture() -> Callable[..., Any]:
    return async_wait_for


@pytest.fixture(scope="session")
def node() -> NodeRunner:
    return NodeRunner()


# --- a real Redis (issue 6) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests flush it or use their own names."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (for tests that stop and restart it)."""
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()
