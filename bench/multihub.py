"""One hub process listening on a shared port (SO_REUSEPORT): start several of these on one port and
the kernel spreads new connections over them. For the idle-connections scenario, where one process
can hold at most about 19,500 (20,000 open files a process here).

    python -m bench.multihub serve --port 8080 --token T --store memory   # same flags as `python -m hub serve`

Each process has its own memory store: fine for holding connections; a deployment that writes would
share a store between them (Redis).
"""

from __future__ import annotations

import sys

from hub import cli
from hub.config import parse_settings

from .floor import reuse_port_socket


def main() -> int:
    _, settings = parse_settings(sys.argv[1:])
    return cli.serve(settings, sockets=[reuse_port_socket(settings.host, settings.port)])


if __name__ == "__main__":
    sys.exit(main())
