"""The benchmark suite is run by hand (bench/RESULTS.md); this only checks that it still imports, plans
a run and runs its store scenarios end to end at a tiny size, so a refactor of the hub does not leave
it broken unnoticed. No figure is asserted: only that each case ran, counted right and checked out."""

from __future__ import annotations

import json
import os

import orjson
import pytest

from bench import commit_anatomy, deferred_settle, sqlite_floor, store_path
from bench.__main__ import main


@pytest.fixture(autouse=True)
def keep_affinity():
    """bench pins its own process to the generator's core: give the test run its cores back."""
    cpus = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, cpus)


def _results(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_bench_all_quick_dry_run_imports_everything(capsys):
    assert main(["all", "--quick", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"] == "all" and plan["options"]["count"] == 1000
    assert plan["options"]["stores"] == ["memory", "sqlite", "redis"]
    assert all(state == "ok" for name, state in plan["modules"].items() if name != "peer")


def test_throughput_runs_the_stores_beside_memory_and_the_floor(capsys):
    assert main(["throughput", "--quick", "--seconds", "0.3", "--warmup", "0.1", "--batches", "10"]) == 0
    [result] = _results(capsys)
    cases = result["cases"]
    assert {"hub/json/b10", "hub/messagepack/b10", "floor/json/b10", "hub/json/b10/sqlite",
            "hub/messagepack/b10/sqlite"} <= set(cases)
    assert all(case["errors"] == 0 for case in cases.values())
    for name in ("sqlite_vs_memory.b10", "sqlite_vs_floor.b10", "messagepack_vs_json.sqlite.b10"):
        assert result["ratios"][f"{name}.events_per_s"] is not None
    if "hub/json/b10/redis" in cases:  # redis-server installed
        assert result["ratios"]["redis_vs_memory.b10.events_per_s"] is not None


def test_sqlite_floor_commits_rows_per_write_per_commit_and_in_multi_row_inserts():
    result = sqlite_floor.measure(batches=(1, 10), rounds=1, seconds=0.05, writes_per_commit=20)  # raises if rows are missing
    variants = ("blocks", "multi_row", "per_commit", "per_write")
    assert set(result["cases"]) == {f"{v}/b{b}" for v in variants for b in (1, 10)}
    assert all(case["events_per_s"] > 0 and case["cpu_us_per_event"] > 0 for case in result["cases"].values())


def test_deferred_settle_answers_every_invocation_of_both_kinds():
    result = deferred_settle.measure(deferred_settle.ROOT, batches=2)  # the child asserts every Completion was written
    assert result["future"] > 0 and result["settled"] > 0


def test_multi_row_inserts_store_every_row_in_order(tmp_path):
    conn = sqlite_floor.open_file(str(tmp_path / "floor.db"))
    rows = [(i % 3, i, f"e{i}", None, None) for i in range(600)]  # 256 + 256 + 88
    sqlite_floor.insert_rows(conn, rows)
    assert conn.execute("SELECT stream, timestamp, id, value, tags FROM events ORDER BY seq").fetchall() == rows


def test_store_path_measures_both_stores():
    result = store_path.measure(batches=(1,), rounds=1, seconds=0.2)
    assert set(result["cases"]) == {"hub/memory/b1", "hub/sqlite/b1"}
    assert all(case["cpu_us_per_write"] > 0 and case["writes_per_s"] > 0 for case in result["cases"].values())


def test_commit_anatomy_counts_every_frame_of_the_measured_commits_and_attributes_it():
    result = commit_anatomy.measure(items=(3,), streams=2, commits=40)
    case = result["cases"]["items3"]
    frames = case["frames_per_commit"]
    # Each commit appends at least its block row's page, the stream index's and the streams row's.
    assert frames["total"] >= 3
    assert abs(sum(n for owner, n in frames.items() if owner != "total") - frames["total"]) < 0.05
    if "unknown" not in frames:  # attributed (SQLite has dbstat): the store's own tables are named
        assert {"event_blocks leaf", "streams leaf"} <= set(frames)
    assert set(case["cpu_us_per_commit"]) == {"FULL", "NORMAL"}
    assert all(us > 0 for us in [*case["cpu_us_per_commit"].values(), *case["file_floor_us"].values()])


def test_blocks_store_every_event_of_a_stream_in_one_row(tmp_path):
    conn = sqlite_floor.open_file(str(tmp_path / "floor.db"))
    events = [{"id": f"e{i}", "timestamp": 10 - i, "value": None, "tags": {"k": "v"} if i % 2 else {}} for i in range(5)]
    sqlite_floor.insert_blocks(conn, [(1, events[:2]), (2, events[2:3]), (1, events[3:])])
    rows = conn.execute("SELECT stream, count, low, high, data FROM event_blocks ORDER BY seq").fetchall()
    assert [(stream, count, low, high, orjson.loads(data)) for stream, count, low, high, data in rows] == [
        (1, 4, 6, 10, [events[0], events[1], events[3], events[4]]),
        (2, 1, 8, 8, [events[2]]),
    ]


def test_readback_pages_through_the_stream_and_matches_the_floor_byte_for_byte(capsys):
    assert main(["readback", "--quick", "--events", "2500", "--page", "1000"]) == 0
    [result] = _results(capsys)
    assert result["first_page_equal"] is True
    assert result["cases"]["http"]["pages"] == result["cases"]["floor"]["pages"] == 3
    assert set(result["cases"]) == {"http", "floor", "signalr"}


def test_streams_case_checks_counters_and_order_over_http(capsys):
    assert main(["streams", "--quick", "--seconds", "0.3", "--stream-counts", "60"]) == 0
    [result] = _results(capsys)
    assert result["all_right"] is True
    assert result["cases"]["sqlite/60"]["checked_streams"] == 50


async def test_the_fanout_filter_bench_runs_at_a_tiny_size(capsys):
    import argparse

    from bench import fanout_filter

    await fanout_filter.main(argparse.Namespace(subscribers=3, events=2, rounds=2, changes=2))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["unfiltered", "admin", "one scoped token", "a token each"]


def test_metrics_scenario_runs_the_hub_with_and_without_metrics(capsys):
    assert main(["metrics", "--quick", "--seconds", "0.3", "--warmup", "0.1", "--batches", "1", "--stores", "memory"]) == 0
    [result] = _results(capsys)
    assert set(result["cases"]) == {"hub/json/b1", "hub-no-metrics/json/b1"}
    assert all(case["errors"] == 0 and case["invocations_per_s"] > 0 for case in result["cases"].values())
    assert "metrics_vs_no_metrics.json/b1.invocations_per_s" in result["ratios"]
