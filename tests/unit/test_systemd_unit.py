"""deploy/writer-hub.service passes `systemd-analyze verify` (Debian's systemd package, installed by
scripts/test; it needs no running systemd), and says what the README promises: a dynamic user, its
--data-dir as the StateDirectory, the file system read-only otherwise, restarted on failure, reload
as SIGHUP, and a stop timeout above --shutdown-timeout + 1 s (the hub's own exit bound)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import parse_settings

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "writer-hub.service"
INSTALLED_AT = "/opt/writer-hub/bin/writer-hub"  # where the unit's comment installs the hub


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: run scripts/test, which installs Debian's systemd")
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_AT} " in text
    # verify checks that ExecStart's program exists: point it at this machine's console script, nothing else changed
    console_script = Path(sys.executable).parent / "writer-hub"
    assert console_script.exists(), f"{console_script} is missing: install the project (scripts/test does)"
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_AT, str(console_script)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), (done.stdout, done.stderr)


def test_the_unit_runs_the_hub_as_the_readme_says():
    service = service_section()
    command = shlex.split(service["ExecStart"])
    assert command[:2] == [INSTALLED_AT, "serve"]
    _, settings = parse_settings(command[1:], env={})  # the flags are the hub's own
    assert settings.data_dir == f"/var/lib/{service['StateDirectory']}"
    assert service["DynamicUser"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["Restart"] == "on-failure"
    assert shlex.split(service["ExecReload"])[1:] == ["-HUP", "$MAINPID"]
    assert float(service["TimeoutStopSec"]) > settings.shutdown_timeout + 1
