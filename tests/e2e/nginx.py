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
import subprocess
from pathlib import Path

import httpx

from .harness import REPO_ROOT, ExternalServer, file_tail, trusting

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


class NginxServer(ExternalServer):
    """`nginx -p <dir> -c <dir>/nginx.conf` on a free loopback port, its config checked with
    `nginx -t` first; stopped with SIGTERM (fast shutdown: open WebSockets are not waited for)."""

    program = package = "nginx"

    def __init__(self, directory: Path, upstreams: list[str], tls: dict[str, Path] | None = None):
        super().__init__(directory)
        self.tls = tls
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(main_config(self.dir, site_config(upstreams, self.port, self.dir, tls)))

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

    def binary(self) -> str | None:
        return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

    def check(self, binary: str) -> None:
        check = subprocess.run([binary, "-t", "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)],
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, f"nginx -t refused the README's config:\n{check.stderr}\n{self.conf.read_text()}"

    def argv(self, binary: str) -> list[str]:
        return [binary, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)]

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0, verify=trusting(self.tls and self.tls["ca"])).status_code == 200
        except httpx.TransportError:
            return False

    def tail(self, lines: int = 40) -> str:
        return file_tail(self.error_log, lines)
