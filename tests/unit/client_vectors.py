"""The real @microsoft/signalr frames in ../shared/vectors, and the messages they decode to.

Shared by the codec and handshake tests. CI clones the repository with shared/ beside it; a test that
needs the vectors is skipped, saying so, where they are absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.signalr.messages import (
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    Ping,
    StreamInvocation,
    StreamItem,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
JSON_VECTORS = "js-client-10.0.11-json.json"
MSGPACK_VECTORS = "js-client-10.0.11-msgpack.json"


def client_frames(name: str) -> list[dict[str, Any]]:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"real-client vectors not found at {path} (CI clones shared/ beside the repo)")
    return json.loads(path.read_text())


def client_messages(event: dict[str, Any]) -> list[HubMessage]:
    """What the frames after the handshake decode to, in order; `event` is the big event as the
    protocol carries it (JSON: an exact int timestamp; MessagePack from JS: a float64)."""
    return [
        Ping(),
        Invocation("SendEventData", ["cars", "66fb0a2f-eb70-494e-9df7-c06d275aeb7c", [event]], "0"),
        Invocation(
            "SendEventData",
            ["cars", "s1", [{"id": "Small", "timestamp": 1234567, "value": "fits in 2^53"}]],
            None,
        ),
        Invocation("StreamEventData", ["cars", "s1"], "2", stream_ids=["1"]),
        StreamItem("1", event),
        StreamItem("1", event),
        Completion("1"),
        StreamInvocation("3", "ReadEventData", ["cars", "s1", 0, True]),
        CancelInvocation("3"),
        Close(),
    ]
