"""Python clients from PyPI against the real hub process: pysignalr (asyncio) and signalrcore
(threads). Each invokes SendEventData and the events are read back over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage

from .support import SignalrcoreSession, batches_of, make_events

pytestmark = pytest.mark.e2e


# --- pysignalr -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pysignalr_client(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0):
    """A connected pysignalr client; its run() task is cancelled on exit."""
    client = SignalRClient(url, headers=headers, retry_count=1)
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    client.on_open(on_open)
    runner = asyncio.create_task(client.run())
    opening = asyncio.create_task(opened.wait())
    try:
        done, _ = await asyncio.wait({runner, opening}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # raises what the client raised
            raise AssertionError("pysignalr stopped before it connected")
        if not opened.is_set():
            raise AssertionError(f"pysignalr did not connect within {timeout} s")
        yield client
    finally:
        opening.cancel()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(runner, 5)


async def pysignalr_invoke(
    client: SignalRClient, method: str, arguments: list, timeout: float = 10.0
) -> CompletionMessage:
    """Invoke and wait for the Completion (pysignalr's send() with a callback sets an invocationId)."""
    done: asyncio.Future[CompletionMessage] = asyncio.get_running_loop().create_future()

    async def on_completion(message: CompletionMessage) -> None:
        if not done.done():
            done.set_result(message)

    await client.send(method, arguments, on_invocation=on_completion)
    return await asyncio.wait_for(done, timeout)


async def test_pysignalr_send_event_data_then_read_back(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(9, "py")
    async with pysignalr_client(shared_hub.hub_url, headers=shared_hub.auth_headers) as client:
        client.on_error(_ignore)
        for batch in batches_of(events, 3):
            completion = await pysignalr_invoke(client, "SendEventData", [topic, stream_id, batch])
            assert completion.error is None, completion
    stored = await asyncio.to_thread(shared_hub.get_events, topic, stream_id)
    assert stored == events


async def test_pysignalr_token_in_query_string(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(2, "q")
    url = f"{shared_hub.hub_url}?access_token={shared_hub.token}"
    async with pysignalr_client(url) as client:
        client.on_error(_ignore)
        completion = await pysignalr_invoke(client, "SendEventData", [topic, stream_id, events])
        assert completion.error is None, completion
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == events


async def test_pysignalr_create_stream_and_error_texts(shared_hub, unique):
    topic = unique("t")
    errors: list[CompletionMessage] = []

    async def on_error(message: CompletionMessage) -> None:
        errors.append(message)

    async with pysignalr_client(shared_hub.hub_url, headers=shared_hub.auth_headers) as client:
        client.on_error(on_error)
        created = await pysignalr_invoke(client, "CreateStream", [topic, {"name": "from python"}])
        assert created.error is None, created
        stream_id = created.result["streamId"]

        unknown = await pysignalr_invoke(client, "NoSuchMethod", [])
        assert (
            unknown.error
            == "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist."
        )

        events = make_events(2, "after-error")
        completion = await pysignalr_invoke(client, "SendEventData", [topic, stream_id, events])
        assert completion.error is None, completion
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == events


async def test_pysignalr_without_token_is_refused(shared_hub):
    from pysignalr.exceptions import AuthorizationError

    client = SignalRClient(shared_hub.hub_url, retry_count=1)
    with pytest.raises(AuthorizationError):
        await asyncio.wait_for(client.run(), 10)


async def _ignore(message: Any) -> None:
    pass


# --- signalrcore (sync, threads) --------------------------------------------------------------------


@pytest.fixture
def signalrcore_session():
    sessions: list[SignalrcoreSession] = []

    def make(url: str, token: str | None) -> SignalrcoreSession:
        session = SignalrcoreSession(url, token)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        with contextlib.suppress(Exception):
            session.stop(5)


def test_signalrcore_send_event_data_then_read_back(shared_hub, unique, signalrcore_session):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(6, "core")
    session = signalrcore_session(shared_hub.hub_url, shared_hub.token)
    session.start()
    for i, batch in enumerate(batches_of(events, 2)):
        completion = session.invoke("SendEventData", [topic, stream_id, batch], invocation_id=f"inv-{i}")
        assert not getattr(completion, "error", None), completion
    assert session.errors == []
    assert shared_hub.get_events(topic, stream_id) == events


def test_signalrcore_error_completion_then_still_works(shared_hub, unique, signalrcore_session):
    topic, stream_id = unique("t"), unique("s")
    session = signalrcore_session(shared_hub.hub_url, shared_hub.token)
    session.start()
    failed = session.invoke("SendEventData", [topic, stream_id, [{"id": "", "timestamp": 1}]], invocation_id="bad")
    assert failed.error.startswith(
        "An unexpected error occurred invoking 'SendEventData' on the server. HubException: events[0].id"
    ), failed.error
    events = make_events(1, "ok")
    completion = session.invoke("SendEventData", [topic, stream_id, events], invocation_id="good")
    assert not getattr(completion, "error", None), completion
    assert shared_hub.get_events(topic, stream_id) == events
