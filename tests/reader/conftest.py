"""Fixtures for the Reader hub tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from e2e.conftest import raw_ws  # noqa: F401 - raw SignalR connections over `websockets`, shared with tests/e2e
