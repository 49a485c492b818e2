"""The hub serving TLS itself (--ssl-certfile, --ssl-keyfile, HUB_SSL_KEYFILE_PASSWORD) with a
certificate made here by a throw-away CA (trustme): the real `@microsoft/signalr` Node client over
wss and https on each transport, trusting that CA through NODE_EXTRA_CA_CERTS as a Node service
would, and refusing the hub without it; and curl over https."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.config import parse_settings

from .harness import make_tls_files, module_hub, report_servers
from .support import events_url, make_events, ndjson

pytestmark = pytest.mark.e2e

KEY_PASSWORD = "tls-key-password-3e1f"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    return make_tls_files(tmp_path_factory.mktemp("tls"), KEY_PASSWORD)


@pytest.fixture(scope="module")
def _tls_hub(tls_files, tmp_path_factory):
    with module_hub(
        tmp_path_factory, "tls-hub",
        "--ssl-certfile", str(tls_files["cert"]), "--ssl-keyfile", str(tls_files["key"]), "--poll-timeout", "2",
        env={"HUB_SSL_KEYFILE_PASSWORD": KEY_PASSWORD},  # the password as the README says to give it
        ca_file=str(tls_files["ca"]),
    ) as hub:  # fmt: skip
        yield hub


@pytest.fixture
def hub(_tls_hub, request):
    report_servers(request, [_tls_hub])
    return _tls_hub


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
def test_node_client_over_tls_on_each_transport(hub, tls_files, node, unique, transport):
    topic, stream_id = unique("tls"), unique("s")
    events = make_events(3, transport)
    assert hub.hub_url.startswith("https://")
    out = node(
        "send-events.mjs",
        {"url": hub.hub_url, "token": hub.token, "transport": transport, "topic": topic, "streamId": stream_id,
         "batches": [events[:1], events[1:]], "trace": True},
        env={"NODE_EXTRA_CA_CERTS": str(tls_files["ca"])},
    )  # fmt: skip
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 2
    messages = [line["message"] for line in out["trace"]]
    assert any(f"Selecting transport '{transport}'" in m for m in messages), messages
    if transport == "WebSockets":  # the client turned https:// into wss:// itself
        assert any(f"wss://127.0.0.1:{hub.port}/hub" in m for m in messages), messages
    assert hub.get_events(topic, stream_id) == events


def test_node_client_refuses_the_hub_without_its_ca(hub, node):
    out = node("send-events.mjs", {"url": hub.hub_url, "token": hub.token, "transport": "LongPolling"})
    assert not out["started"]
    assert "certificate" in out["startError"].lower() or "fetch failed" in out["startError"], out["startError"]


def test_curl_over_https(hub, tls_files, unique):
    curl = shutil.which("curl")
    assert curl, "curl is not installed: run scripts/test (it installs Debian's curl)"
    topic, stream_id = unique("tls"), unique("s")
    events = make_events(2, "curl")
    url = f"{hub.url}{events_url(topic, stream_id)}"
    common = [curl, "--silent", "--show-error", "--fail-with-body", "--cacert", str(tls_files["ca"]),
              "-H", f"Authorization: Bearer {hub.token}"]  # fmt: skip
    sent = subprocess.run(
        [*common, "-H", "Content-Type: application/x-ndjson", "--data-binary", "@-", url],
        input=ndjson(events), capture_output=True, timeout=10,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"successful_rows": 2, "quarantined_rows": 0}
    read = subprocess.run([*common, url], capture_output=True, timeout=10)
    assert read.returncode == 0 and json.loads(read.stdout) == events, read
    # without the CA, curl refuses the certificate (so the above really checked it)
    refused = subprocess.run([curl, "--silent", "--show-error", f"{hub.url}/health"], capture_output=True, timeout=10)
    assert refused.returncode == 60, refused  # CURLE_PEER_FAILED_VERIFICATION


def test_tls_and_proxy_flags_read_from_flags_and_env():
    _, settings = parse_settings(
        ["serve", "--ssl-certfile", "c.pem", "--root-path", "/signalr/", "--forwarded-allow-ips", "10.0.0.1"],
        env={"HUB_SSL_KEYFILE": "k.pem", "HUB_SSL_KEYFILE_PASSWORD": "pw", "HUB_ROOT_PATH": "/ignored"},
    )
    assert (settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_keyfile_password) == ("c.pem", "k.pem", "pw")
    assert settings.root_path == "/signalr" and settings.forwarded_allow_ips == "10.0.0.1"
    _, defaults = parse_settings(["serve"], env={})
    assert defaults.ssl_certfile is None and defaults.root_path == "" and defaults.forwarded_allow_ips == "127.0.0.1,::1"
    with pytest.raises(SystemExit, match="--ssl-keyfile needs --ssl-certfile"):
        parse_settings(["serve", "--ssl-keyfile", "k.pem"], env={})
    with pytest.raises(SystemExit):
        parse_settings(["serve", "--root-path", "signalr"], env={})
