"""The console chart's data model (hub/console/static/chart-data.js) under Node's test runner: the
seam between history and live, the 50,000-point bound, timestamp order (tests/node/chart-data.test.mjs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_chart_data_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run scripts/test, which installs it")
    result = subprocess.run([node, "--test", str(NODE_DIR / "chart-data.test.mjs")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 7" in result.stdout, result.stdout[-2000:]
