"""The benchmark suite is run by hand (bench/RESULTS.md); this only checks that it still imports and
plans a run, so a refactor of the hub does not leave it broken unnoticed."""

from __future__ import annotations

import json

from bench.__main__ import main


def test_bench_all_quick_dry_run_imports_everything(capsys):
    assert main(["all", "--quick", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"] == "all" and plan["options"]["count"] == 1000
    assert all(state == "ok" for name, state in plan["modules"].items() if name != "peer")
