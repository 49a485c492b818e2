"""The real processes the tests run: the hub (`python -m hub serve`), the Node drivers of the real
`@microsoft/signalr` client, and redis-server. Plain classes, importable as `e2e.harness` (or
`.harness` from tests/e2e); the pytest fixtures over them live in tests/conftest.py.

Import from here, not `from conftest import …`: several directories have a conftest.py, and which
one the bare name `conftest` means depends on collection order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from .support import events_url

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = REPO_ROOT / "tests" / "node"

# Known token for the test servers; distinctive so a leak into logs is easy to grep for.
TEST_TOKEN = "e2e-token-4f9c2b7a1d"

# Short timers so timeouts are testable in seconds. The client timeout stays above the clients'
# own ping interval (15 s for @microsoft/signalr and pysignalr) so idle test clients are not dropped.
SHORT_TIMERS = [  # fmt: skip
    "--keepalive-interval", "1",
    "--handshake-timeout", "5",
    "--disconnect-timeout", "3",
    "--client-timeout", "30",
    "--shutdown-timeout", "3",
]

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


# --- small helpers ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the hub start retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; return that. Fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {message or predicate}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = ""
) -> Any:
    """`wait_for` for async tests; `predicate` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {message or predicate}")
        await asyncio.sleep(interval)


def file_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no file)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def trusting(ca_file: str | Path | None) -> Any:
    """httpx's `verify`: an SSL context trusting only this CA, or the default when there is none."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


# --- the hub server process --------------------------------------------------------------------


@dataclass
class HubServer:
    """One running `python -m hub serve` process."""

    port: int
    token: str | None
    tokens: list[str]
    data_dir: Path
    log_dir: Path
    args: list[str]
    env: dict[str, str]
    ca_file: str | None = None  # set: the hub serves TLS (--ssl-certfile) with a certificate this CA signed
    proc: subprocess.Popen | None = None
    _stdout_file: Any = field(default=None, repr=False)
    _stderr_file: Any = field(default=None, repr=False)

    host = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://{self.host}:{self.port}"

    @property
    def hub_url(self) -> str:
        return f"{self.url}/hub"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.ca_file else 'ws'}://{self.host}:{self.port}/hub"

    @property
    def verify(self) -> Any:
        """httpx's `verify` for this hub: its CA under TLS."""
        return trusting(self.ca_file)

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "stderr.log"

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return (
            f"--- hub on port {self.port}: {' '.join(self.args)}\n"
            f"--- exit code: {self.proc.poll() if self.proc else 'not started'}\n"
            f"--- stdout (last {lines} lines):\n{file_tail(self.stdout_path, lines)}\n"
            f"--- stderr (last {lines} lines):\n{file_tail(self.stderr_path, lines)}"
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def http(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on this hub, with the token (pass headers={} to go without)."""
        kwargs.setdefault("headers", self.auth_headers)
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("verify", self.verify)
        return httpx.Client(base_url=self.url, **kwargs)

    def get_events(self, topic: str, stream_id: str, **params: Any) -> list[dict]:
        """GET a stream's events (`events_url`), asserting a 200."""
        with self.http() as client:
            response = client.get(events_url(topic, stream_id), params=params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # lifecycle

    def start(self, ready_timeout: float = STARTUP_TIMEOUT) -> "HubServer":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stdout_file = open(self.stdout_path, "ab")
        self._stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", *self.args],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_file,
            stderr=self._stderr_file,
        )
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, verify=self.verify) as client:
            while True:
                if self.proc.poll() is not None:
                    raise HubStartError(f"hub exited with {self.proc.returncode} before it was ready\n{self.tail()}")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    raise HubStartError(f"hub not ready within {timeout} s\n{self.tail()}")
                time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_files()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL at once (a crash)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_files()
        return self.proc.returncode

    def _close_files(self) -> None:
        for f in (self._stdout_file, self._stderr_file):
            if f is not None and not f.closed:
                f.close()


def report_servers(request: pytest.FixtureRequest, servers: list["HubServer"]) -> None:
    """Have the tails of these hub processes added to the report if the test fails."""
    request.node.__dict__.setdefault("_hub_servers", []).extend(servers)


class HubStartError(RuntimeError):
    pass


_DEFAULT = object()


class HubServerFactory:
    """Starts hub processes; `close()` stops every one it started."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.servers: list[HubServer] = []

    def __call__(
        self,
        *extra_args: str,
        token: Any = _DEFAULT,
        tokens: list[str] | None = None,
        data_dir: Path | str | None = None,
        env: dict[str, str] | None = None,
        timers: bool = True,
        ready_timeout: float = STARTUP_TIMEOUT,
        ca_file: str | None = None,
    ) -> HubServer:
        """Start a hub and wait until /health answers.

        token: the one token (default TEST_TOKEN); None passes no --token at all (the hub then
          generates one, or runs anonymous with "--allow-anonymous" in extra_args).
        tokens: several tokens (overrides token); the first becomes `.token`.
        extra_args: more flags; they come after the defaults, so they win (argparse: last wins).
        env: extra environment (HUB_* variables); inherited HUB_* variables are removed first.
        ca_file: the hub serves TLS (pass --ssl-certfile/--ssl-keyfile in extra_args or env) with a
          certificate this CA signed; it is then reached over https and wss, trusting this CA.
        """
        if tokens is None:
            tokens = [TEST_TOKEN] if token is _DEFAULT else ([] if token is None else [token])
        name = f"hub{len(self.servers)}"
        data_dir = Path(data_dir) if data_dir is not None else self.base_dir / f"{name}-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env.update(env or {})

        last_error: Exception | None = None
        for attempt in range(3):  # a port can be taken between free_port() and bind: retry
            port = free_port()
            args = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
            for t in tokens:
                args += ["--token", t]
            if timers:
                args += SHORT_TIMERS
            args += list(extra_args)
            server = HubServer(
                port=port,
                token=tokens[0] if tokens else None,
                tokens=list(tokens),
                data_dir=data_dir,
                log_dir=self.base_dir / f"{name}-logs-{attempt}",
                args=args,
                env=child_env,
                ca_file=ca_file,
            )
            self.servers.append(server)
            try:
                return server.start(ready_timeout)
            except HubStartError as error:
                server.stop()
                last_error = error
                if "address already in use" not in server.stderr_text().lower():
                    raise
        raise last_error  # type: ignore[misc]

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def module_hub(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str, **kwargs: Any) -> Iterator[HubServer]:
    """One hub for a test module, stopped after it: a module-scoped fixture yields it
    (`with module_hub(tmp_path_factory, "cors-hub", "--cors-origin", APP) as hub: yield hub`);
    arguments as HubServerFactory's."""
    factory = HubServerFactory(tmp_path_factory.mktemp(name))
    try:
        yield factory(*args, **kwargs)
    finally:
        factory.close()


# --- TLS ------------------------------------------------------------------------------------------


def make_tls_files(directory: Path, key_password: str) -> dict[str, Path]:
    """A throw-away CA (trustme) and a certificate it signed for 127.0.0.1 and localhost, its key
    encrypted with `key_password`: {"ca", "cert", "key", "password"} files in `directory`."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    files["password"] = directory / "key-password"
    ca.cert_pem.write_to_path(str(files["ca"]))
    files["cert"].write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    files["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(key_password.encode()),
    ))  # fmt: skip
    files["password"].write_text(key_password + "\n")
    return files


# --- the real JavaScript client -------------------------------------------------------------------


class NodeDriverError(AssertionError):
    pass


class NodeRunner:
    """Runs `node tests/node/<script> '<json spec>'` and returns the JSON it prints last."""

    def __init__(self) -> None:
        self.node = shutil.which("node")

    def _check_ready(self) -> None:
        if self.node is None:
            raise NodeDriverError("node is not installed: run scripts/test, which installs it")
        if not (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir():
            raise NodeDriverError("tests/node/node_modules is missing: run scripts/test (it runs npm ci)")

    def _command(self, script: str, spec: dict) -> list[str]:
        return [self.node, str(NODE_DIR / script), json.dumps(spec)]

    @staticmethod
    def _parse(script: str, returncode: int, stdout: str, stderr: str, check: bool) -> dict:
        lines = [line for line in stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise NodeDriverError(
                f"{script} printed no JSON (exit {returncode})\nstdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}"
            ) from None
        if check and (returncode != 0 or "crashed" in result):
            raise NodeDriverError(
                f"{script} failed (exit {returncode}): {result.get('crashed')}\n"
                f"{result.get('stack', '')}\nstderr:\n{stderr[-4000:]}"
            )
        return result

    def __call__(
        self, script: str, spec: dict, timeout: float = 30.0, env: dict | None = None, check: bool = True
    ) -> dict:
        """Run a driver synchronously. `check` raises on a crash or a non-zero exit."""
        self._check_ready()
        spec = {"timeoutMs": int(timeout * 1000) - 2000, **spec}
        try:
            done = subprocess.run(
                self._command(script, spec),
                cwd=NODE_DIR,
                env={**os.environ, **(env or {})},
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise NodeDriverError(f"{script} did not finish within {timeout} s\nstderr:\n{error.stderr}") from None
        return self._parse(script, done.returncode, done.stdout, done.stderr, check)

    async def run_async(
        self, script: str, spec: dict, timeout: float = 30.0, env: dict | None = None, check: bool = True
    ) -> dict:
        """The same, without blocking the event loop (for tests that hold raw sockets meanwhile)."""
        self._check_ready()
        spec = {"timeoutMs": int(timeout * 1000) - 2000, **spec}
        proc = await asyncio.create_subprocess_exec(
            *self._command(script, spec),
            cwd=NODE_DIR,
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise NodeDriverError(f"{script} did not finish within {timeout} s") from None
        return self._parse(script, proc.returncode, stdout.decode(), stderr.decode(), check)


class HeldConnection:
    """tests/node/hold-connection.mjs: connected, one invoke done, then waiting until `stop()` (closes
    its stdin: a clean stop), `kill()` (the connection vanishes) or the server closes it."""

    def __init__(self, spec: dict):
        self.proc = subprocess.Popen(
            ["node", str(NODE_DIR / "hold-connection.mjs"), json.dumps({"timeoutMs": 30000, **spec})],
            cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        assert line, f"driver ended early: {self.proc.stderr.read()}"
        self.hello = json.loads(line)

    def stop(self) -> dict:
        self.proc.stdin.close()
        out = self.proc.stdout.read()  # until the driver exits (its watchdog bounds the wait)
        self.proc.wait(5)
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def closed_by_server(self, timeout: float) -> dict:
        """What the driver printed when the server closed the connection (raises
        subprocess.TimeoutExpired if it was not closed within `timeout` s)."""
        self.proc.wait(timeout)
        return json.loads(self.proc.stdout.read().strip().splitlines()[-1])


# --- real servers the tests start: Redis (issue 6), Prometheus and nginx (issue 16, nginx.py) --------
# scripts/test installs their Debian packages. Without one, start() skips (fails under CI=true).


class ExternalServer:
    """A program of another project, run on a free loopback port with its own dir and log file."""

    program = ""  # the command, as scripts/test's need_deb line names it
    package = ""  # its Debian package

    def __init__(self, base_dir: Path):
        self.dir = base_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / f"{self.program}.log"
        self._log: Any = None

    def argv(self, binary: str) -> list[str]:
        """The command line that starts it."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether it answers yet (polled by start)."""
        raise NotImplementedError

    def binary(self) -> str | None:
        """Where the program is (None: not installed)."""
        return shutil.which(self.program)

    def check(self, binary: str) -> None:
        """Before it starts: fail the test if what it would run is wrong (e.g. a config test)."""

    def start(self, timeout: float = 10.0):
        binary = self.binary()
        if binary is None:
            message = f"{self.program} is not installed: run scripts/test (it installs Debian's {self.package})"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.check(binary)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(binary), stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"{self.program} on port {self.port} did not start\n{self.tail()}")
            time.sleep(0.05)
        return self

    def tail(self, lines: int = 40) -> str:
        return file_tail(self.log_path, lines)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class RedisServer(ExternalServer):
    """One `redis-server` on a free loopback port with its own dir, AOF fsynced on every write."""

    program = package = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self, binary: str) -> list[str]:
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"]  # fmt: skip

    def ready(self) -> bool:
        return self.ping()

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (tests need no client library for FLUSHALL)."""
        parts = [f"*{len(args)}\r\n".encode()] + [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args]
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def flush(self) -> None:
        assert self.command("FLUSHALL").startswith(b"+OK")

    def restart(self) -> None:
        """Stop (SIGTERM, the AOF is already on disk) and start again on the same port and dir."""
        self.stop()
        self.start()


class PrometheusServer(ExternalServer):
    """A real Prometheus scraping `target` (host:port) every second, `bearer` as its token; queried
    through its HTTP API (`value`)."""

    program = package = "prometheus"

    def __init__(self, base_dir: Path, target: str, bearer: str | None = None):
        super().__init__(base_dir)
        job = {"job_name": "hub", "scrape_interval": "1s", "scrape_timeout": "900ms", "static_configs": [{"targets": [target]}]}
        if bearer is not None:
            job["authorization"] = {"type": "Bearer", "credentials": bearer}
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}
        self.config_path = self.dir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML

    def argv(self, binary: str) -> list[str]:
        return [binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]  # fmt: skip

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expression: str) -> list[dict]:
        """The instant vector `expression` evaluates to now."""
        reply = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": expression}, timeout=5).json()
        assert reply["status"] == "success", reply
        return reply["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The one value `expression` evaluates to now; None while it has none."""
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None
