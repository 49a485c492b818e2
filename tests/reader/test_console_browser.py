"""The live console page (served by the hub at /) in headless Chromium: it asks for the token (a
wrong one is refused), lists the streams, tails the chosen one live, and a test event sent from its
form and one sent over HTTP both appear in the tail within 2 s, newest on top. The page is saved to
test-artifacts/reader-console.png."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from e2e.harness import NODE_DIR, REPO_ROOT
from e2e.support import make_events

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "reader-console.png"


def test_the_console_tails_a_stream_live_in_a_browser(hub_server, node, unique):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium")
    if not (NODE_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("tests/node/node_modules is incomplete: run scripts/test (it runs npm ci)")
    hub = hub_server()
    topic, stream = unique("console"), "car-1"

    page = httpx.get(f"{hub.url}/")  # no token needed to load the page
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    with hub.http() as client:
        for other in ("car-2", stream):  # the chosen stream exists, with one event, before the page loads
            assert client.post(f"/topics/{topic}/streams/{other}/events/data", json=make_events(1)).status_code == 200

    SCREENSHOT.parent.mkdir(exist_ok=True)
    result = node("console-run.mjs", {
        "pageUrl": f"{hub.url}/",
        "token": hub.token,
        "topic": topic,
        "stream": stream,
        "httpUrl": f"{hub.url}/topics/{topic}/streams/{stream}/events/data",
        "screenshot": str(SCREENSHOT),
        "withinMs": 2000,
    }, timeout=60)

    assert "refused" in result["refusal"], result
    assert result["formMs"] < 2000 and result["httpMs"] < 2000, result
    assert result["tail"] == [{"id": "from-http", "value": "sent with curl"}, {"id": "from-form", "value": "typed in the page"}]
    assert result["row"][:4] == [topic, stream, "", "open"] and int(result["row"][4]) >= 3, result["row"]
    assert not result["pageErrors"], result["pageErrors"]
    # the refused token's 401 is the only error the browser reports
    assert all("401" in text for text in result["consoleErrors"]), result["consoleErrors"]
    assert SCREENSHOT.stat().st_size > 10_000
    stored = hub.get_events(topic, stream)
    assert [e["id"] for e in stored] == ["ev-0", "from-form", "from-http"]
    assert stored[1]["tags"] == {"source": "console"}


READ_ONLY_SCREENSHOT = REPO_ROOT / "test-artifacts" / "reader-console-read-only.png"


def test_the_console_with_a_read_only_token(hub_server, node, unique, tmp_path):
    """Issue 14: a token with read:<topic> only. The page works (lists and tails the topic it may
    read, and only that one), the send control is disabled and says why, and nothing errs."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium")
    topic, hidden, stream = unique("fleet"), unique("secret"), "car-1"
    viewer = "viewer-token-0d9c2e71"
    (tmp_path / "tokens").write_text(f"{viewer}  name=viewer  read:{topic}\n")
    hub = hub_server("--token-file", str(tmp_path / "tokens"))  # and the admin --token
    with hub.http() as client:
        for name in (topic, hidden):
            assert client.post(f"/topics/{name}/streams/{stream}/events/data", json=make_events(1)).status_code == 200

    READ_ONLY_SCREENSHOT.parent.mkdir(exist_ok=True)
    result = node("console-run.mjs", {
        "pageUrl": f"{hub.url}/",
        "token": viewer,
        "writeToken": hub.token,
        "readOnly": True,
        "topic": topic,
        "stream": stream,
        "httpUrl": f"{hub.url}/topics/{topic}/streams/{stream}/events/data",
        "screenshot": str(READ_ONLY_SCREENSHOT),
        "withinMs": 5000,
    }, timeout=60)

    why = f"This token (token:viewer) lacks write:{topic}: sending is disabled."
    assert result["send"] == {"disabled": True, "why": why, "whyVisible": True, "title": why}, result["send"]
    assert result["whoami"] == f"token:viewer · read:{topic}"
    assert result["topics"] == [topic]  # the other topic is not listed
    assert result["tail"] == [{"id": "from-http", "value": "sent with curl"}]
    assert result["row"][:4] == [topic, stream, "", "open"], result["row"]
    assert result["consoleErrors"] == [] and result["pageErrors"] == [], result
    assert [e["id"] for e in hub.get_events(topic, stream)] == ["ev-0", "from-http"]  # nothing sent from the page
