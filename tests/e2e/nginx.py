"""A real nginx (Debian's package; scripts/test installs it) in front of hub processes, running the
configuration the README's "Behind nginx" section gives, read from the README itself so the two
cannot drift: only the upstream ports, the listen line and the log folder are changed.

nginx needs no root here: `-p <tmp dir>`, `daemon off`, its pid, error log, access log and
temp files in the tmp dir, one worker (round robin is then exact and tests can count on it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .harness import REPO_ROOT, file_tail, free_port, trusting

README = REPO_ROOT / "README.md"
# the ports the README's upstreams name, in order: the test's hub processes take their places
README_UPSTREAMS = ("127.0.0.1:8080", "127.0.0.1:8081")
README_LOG_DIR = "/var/log/nginx/"
PREFIX = "/signalr"


def readme_nginx_block(readme: Path = README) -> str:
    """The ```nginx block of the README's "Behind nginx" section, as written there."""
    text = readme.read_text()
    section = text.split("\n## Behind nginx\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```nginx\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"expected one nginx block in README's Behind nginx, found {len(blocks)}"
    return blocks[0]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the README's nginx block no longer contains {old!r}: update tests/e2e/nginx.py"
    return text.replace(old, new)


def site_config(upstreams: list[str], port: int, log_dir: Path, tls: dict[str, Path] | None = None) -> str:
    """The README's block with the test's hub addresses, port and log folder; with `tls` (files of
    harness.make_tls_files) nginx terminates TLS, as the README's comment on the listen line says."""
    assert len(upstreams) == len(README_UPSTREAMS), upstreams
    text = readme_nginx_block()
    for old, new in zip(README_UPSTREAMS, upstreams):
        text = _replace(text, f"server {old};", f"server {new};")
    listen = f"listen 127.0.0.1:{port};"
    if tls is not None:
        listen = (f"listen 127.0.0.1:{port} ssl; ssl_certificate {tls['cert']}; ssl_certificate_key {tls['key']}; "
                  f"ssl_password_file {tls['password']};")  # fmt: skip
    text = _replace(text, "listen 80;", listen)
    return _replace(text, README_LOG_DIR, f"{log_dir}/")


def main_config(directory: Path, site: str) -> str:
    """What Debian's /etc/nginx/nginx.conf would be, every path in `directory`."""
    temp = "\n".join(f"    {kind}_temp_path {directory}/{kind}_temp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # as root nginx runs its worker as nobody, who may not write the tmp dir's temp files (request
    # bodies above 16 KiB go there): keep the worker as the user running the test
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\n{user}worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {directory}/access.log;\n{temp}\n{site}\n}}\n"
    )


class NginxServer:
    """`nginx -p <dir> -c <dir>/nginx.conf` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, directory: Path, upstreams: list[str], tls: dict[str, Path] | None = None):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(main_config(self.dir, site_config(upstreams, self.port, self.dir, tls)))
        self.proc: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Where the hub is behind this nginx, prefix included (no trailing slash)."""
        return f"{self.origin}{PREFIX}"

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"

    @property
    def access_log(self) -> Path:
        return self.dir / "writer-hub.access.log"

    def start(self, timeout: float = 10.0) -> "NginxServer":
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if binary is None:
            pytest.fail("nginx is not installed: run scripts/test (it installs Debian's nginx)")
        check = subprocess.run([binary, "-t", "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)],
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, f"nginx -t refused the README's config:\n{check.stderr}\n{self.conf.read_text()}"
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, verify=trusting(self.tls and self.tls["ca"])) as client:
            while True:
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(f"nginx on port {self.port} did not start\n{file_tail(self.error_log)}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open WebSockets are not waited for
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
