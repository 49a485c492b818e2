"""/reader's HTTP routes (negotiate and the SSE / long-polling transport requests) in the OpenAPI
document, described like /hub's (hub/http_api/openapi.py) under their own tag and operation ids."""

from __future__ import annotations

from dataclasses import replace

from ..http_api.openapi import negotiate_operation, signalr_transport_operations
from ..http_api.operations import Operation

TAG = "SignalR Reader hub"


def reader_operations(path: str = "/reader") -> list[Operation]:
    negotiate = replace(
        negotiate_operation(path),
        description=f"Then connect to {path} with a transport and subscribe (SubscribeToEvent, SubscribeToParameter, "
        "SubscribeToActiveStreams; the server calls EventDataReceived, ParameterDataReceived, ActiveStreamsChanged). "
        "See protocol-notes/reader.md.",
    )
    return [
        replace(op, tag=TAG, operation_id=f"reader_{op.operation_id}")
        for op in (negotiate, *signalr_transport_operations(path))
    ]
