"""The hub in a real browser, cross-origin, as a web app uses it.

A page served from a second origin (a static server on another port, in this module) loads the
`@microsoft/signalr` browser bundles from tests/node/node_modules; headless Chromium (Debian's
/usr/bin/chromium, driven by playwright-core through tests/node/browser-run.mjs) runs every scenario
in one launch: each transport forced with `transport:` (and MessagePack over WebSockets and long
polling) connects with accessTokenFactory, invokes SendEventData, reads the events back with a
cross-origin fetch, and stops; without a token, start() fails with a 401; withAutomaticReconnect()
comes back after the hub restarts on the same port. The page is saved to
test-artifacts/browser-transports.png.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from e2e.harness import NODE_DIR, REPO_ROOT, module_hub, report_servers
from e2e.support import make_events

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
PAGE_DIR = Path(__file__).resolve().parent / "page"
VENDOR = {
    "/vendor/signalr.js": NODE_DIR / "node_modules/@microsoft/signalr/dist/browser/signalr.js",
    "/vendor/signalr-protocol-msgpack.js": NODE_DIR
    / "node_modules/@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.js",
}
RECONNECTS = [("reconnect", None), ("reconnect-longpolling", "LongPolling")]
SCREENSHOT = REPO_ROOT / "test-artifacts" / "browser-transports.png"

SCENARIOS = [
    ("websockets-json", "WebSockets", "json"),
    ("sse-json", "ServerSentEvents", "json"),
    ("longpolling-json", "LongPolling", "json"),
    ("websockets-messagepack", "WebSockets", "messagepack"),
    ("longpolling-messagepack", "LongPolling", "messagepack"),
]


class _PageHandler(SimpleHTTPRequestHandler):
    """tests/browser/page, plus the npm bundles under /vendor/."""

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0]
        if clean in VENDOR:
            return str(VENDOR[clean])
        return super().translate_path(path)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_PageHandler, directory=str(PAGE_DIR)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_hub(tmp_path_factory, page_origin):
    # sqlite in the data dir: what was acknowledged before the restart is still there after it.
    with module_hub(tmp_path_factory, "browser-hub", "--cors-origin", page_origin, "--poll-timeout", "5", "--store", "sqlite") as hub:
        yield hub


@pytest.fixture(autouse=True)
def _report_hub(browser_hub, request):
    report_servers(request, [browser_hub])


@pytest.fixture(scope="module")
def browser_results(browser_hub, page_origin):
    """Every scenario in one Chromium launch; {scenario name: result}. The reconnect scenario
    signals when it waits: the hub is then restarted on the same port."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium")
    if not (NODE_DIR / "node_modules" / "playwright-core").is_dir() or not all(p.exists() for p in VENDOR.values()):
        pytest.fail("tests/node/node_modules is incomplete: run scripts/test (it runs npm ci)")
    hub = browser_hub
    scenarios = []
    for name, transport, protocol in SCENARIOS:
        scenarios.append(_scenario(hub, name, transport=transport, protocol=protocol))
    scenarios.append({**_scenario(hub, "no-token", transport="WebSockets"), "token": None, "expectRefusal": True})
    for name, transport in RECONNECTS:
        scenarios.append({**_scenario(hub, name, transport=transport), "reconnect": {"events": make_events(2, f"{name}-after")}})
    SCREENSHOT.parent.mkdir(exist_ok=True)
    spec = {"pageUrl": f"{page_origin}/index.html", "scenarios": scenarios, "screenshot": str(SCREENSHOT), "timeoutMs": 100_000}

    proc = subprocess.Popen(
        [shutil.which("node") or "node", str(NODE_DIR / "browser-run.mjs"), json.dumps(spec)],
        cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    results: dict = {"_spec": {s["name"]: s for s in scenarios}}
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            message = json.loads(line)
            if message.get("event") == "waiting-for-restart":
                hub.stop()
                hub.start()  # same port, same data dir
            elif message.get("event") == "result":
                results[message["scenario"]] = message["result"]
            elif message.get("event") == "done":
                results["_done"] = message
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if "_done" not in results:
        pytest.fail(f"browser-run.mjs did not finish (exit {proc.returncode}):\n{''.join(lines)[-4000:]}\n{proc.stderr.read()[-4000:]}")
    return results


def _scenario(hub, name: str, **extra) -> dict:
    return {
        "name": name,
        "hubUrl": hub.hub_url,
        "token": hub.token,
        "topic": "browser",
        "streamId": f"{name}-stream",
        "events": make_events(3, name),
        **extra,
    }


@pytest.mark.parametrize(("name", "transport", "protocol"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_browser_transport(browser_results, name, transport, protocol):
    result = browser_results[name]
    spec = browser_results["_spec"][name]
    assert result["started"], result
    assert result["transport"] == transport, result
    assert "error" not in result, result
    assert result["invoke"] is None
    assert result["readBack"] == {"status": 200, "body": spec["events"]}
    assert result["state"] == "Disconnected"
    assert result["closeError"] is None


def test_browser_without_token_fails_clearly(browser_results):
    result = browser_results["no-token"]
    assert not result["started"]
    assert "401" in result["startError"], result["startError"]


@pytest.mark.parametrize("name", [r[0] for r in RECONNECTS])
def test_browser_reconnects_after_the_hub_restarts(browser_results, name):
    result = browser_results[name]
    spec = browser_results["_spec"][name]
    assert result["started"] and "error" not in result, result
    assert result["readBack"]["body"] == spec["events"]
    # The hub said goodbye with allowReconnect (graceful shutdown), then came back on the same port.
    assert result["reconnected"], result
    assert result["invokeAfter"] is None
    assert result["readBackAfter"] == {"status": 200, "body": spec["events"] + spec["reconnect"]["events"]}
    assert result["state"] == "Disconnected"


def test_screenshot_saved(browser_results):
    assert browser_results["_done"]["pageErrors"] == []
    assert SCREENSHOT.stat().st_size > 0
