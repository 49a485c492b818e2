"""Starting the servers under test (hub, floor, peer), pinned to their own core, and reading what they
use from /proc: CPU time and resident memory.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Two cores: the server gets one, the generator the other, so they do not fight.
SERVER_CPUS = os.environ.get("BENCH_SERVER_CPUS", "1")
CLIENT_CPUS = os.environ.get("BENCH_CLIENT_CPUS", "0")


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_1m": round(load[0], 2),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin_self() -> None:
    """Pin this process (the generator) to the client core(s)."""
    with contextlib.suppress(OSError, ValueError):
        os.sched_setaffinity(0, {int(c) for c in CLIENT_CPUS.split(",")})


# --- /proc ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


class CpuMeter:
    """CPU use of some processes between start() and stop(), as a share of one core."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self._t0 = self._c0 = 0.0

    def start(self) -> None:
        self._t0, self._c0 = time.perf_counter(), sum(cpu_seconds(p) for p in self.pids)

    def stop(self) -> float:
        elapsed = time.perf_counter() - self._t0
        return round((sum(cpu_seconds(p) for p in self.pids) - self._c0) / elapsed, 3)


# --- processes --------------------------------------------------------------------------------------


@dataclass
class Server:
    kind: str  # hub | floor | peer
    port: int
    procs: list[subprocess.Popen] = field(default_factory=list)
    log: Path | None = None
    helper_pids: list[int] = field(default_factory=list)  # e.g. its redis-server: its CPU reported apart

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        return sum(rss_bytes(p) for p in self.pids)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _command(kind: str, port: int, extra: list[str], reuse_port: bool, store: str) -> list[str]:
    py = sys.executable
    if kind in ("hub", "baseline", "hub-no-metrics"):
        module = "bench.multihub" if reuse_port else "hub"
        if kind == "hub-no-metrics":  # issue 16: what counting costs
            extra = ["--no-metrics", *extra]
        return [py, "-m", module, "serve", "--host", "127.0.0.1", "--port", str(port), "--token", TOKEN,
                "--store", store, *extra]
    if kind == "floor":
        return [py, "-m", "bench.floor", "--port", str(port), *(["--reuse-port"] if reuse_port else []), *extra]
    if kind == "peer":
        return [py, "-m", "bench.peer", "--port", str(port), *extra]
    raise ValueError(kind)


def start(kind: str, *, extra: list[str] | None = None, processes: int = 1, port: int | None = None,
          cpus: str = SERVER_CPUS, timeout: float = 30.0, store: str = "memory") -> Server:
    """Start `processes` server processes of `kind` on one port (several: SO_REUSEPORT), pinned to
    `cpus` with taskset -a, and wait until the port answers."""
    port = port or free_port()
    logdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    server = Server(kind, port, log=logdir / "server.log")
    taskset = ["taskset", "-a", "-c", cpus] if shutil.which("taskset") and cpus else []
    # "baseline": the hub of another checkout (BENCH_BASELINE), e.g. the code before an optimisation.
    root = Path(os.environ["BENCH_BASELINE"]) if kind == "baseline" else ROOT
    env = dict(os.environ, PYTHONPATH=f"{root}:{ROOT}", HUB_DATA_DIR=str(logdir))
    env.pop("PYTHONDEVMODE", None)
    with open(server.log, "ab") as log:
        for _ in range(processes):
            cmd = taskset + _command(kind, port, extra or [], reuse_port=processes > 1, store=store)
            server.procs.append(
                subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            )
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            server.stop()
            raise RuntimeError(f"{kind} server exited: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{kind} server did not start within {timeout}s")
        time.sleep(0.05)
    time.sleep(0.3 if processes == 1 else 1.0)  # lifespan start-up, every process listening
    return server


@contextlib.contextmanager
def running(kind: str, store: str = "memory", **kwargs) -> Iterator[Server]:
    """A fresh server of `kind`; for the hub, on `store`: memory, sqlite (a fresh file) or redis (a
    fresh redis-server of its own, on the generator's core as issue 15 measures it)."""
    with contextlib.ExitStack() as stack:
        helpers = []
        if store == "redis":
            store, pid = stack.enter_context(redis_server())
            helpers.append(pid)
        server = start(kind, store=store, **kwargs)
        server.helper_pids = helpers
        stack.callback(server.stop)
        yield server
    # Its folder holds its log and data (a sqlite file can be 100 MB): kept only when the run failed.
    shutil.rmtree(server.log.parent, ignore_errors=True)


@contextlib.contextmanager
def redis_server(cpus: str = CLIENT_CPUS) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on a free port, `appendfsync always` (acknowledged = on disk, like
    sqlite's FULL), in a temp dir; yields its URL and pid."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    taskset = ["taskset", "-c", cpus] if shutil.which("taskset") and cpus else []
    proc = subprocess.Popen(taskset + [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                                       "--appendonly", "yes", "--appendfsync", "always"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
