"""The sans-I/O session with bytes alone (no event loop, no transport): the handshake in JSON and
MessagePack, records split across frames, the state table (illegal transitions raise), the outbox's
bound and the fell-behind Close, and stateful reconnect's numbering, Acks and replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.signalr.close_reason import CloseReason
from hub.signalr.handshake import HandshakeError
from hub.signalr.messages import Ack, Close, Completion, Invocation, Ping, Sequence, StreamItem
from hub.signalr.options import SignalROptions
from hub.signalr.outbox import FellBehind
from hub.signalr.protocols import ProtocolError, TransferFormat
from hub.signalr.protocols.msgpack import MessagePackHubProtocol
from hub.signalr.session import TRANSITIONS, InvalidTransition, Session, SessionEvent, State
from hub.signalr.stateful import MessageBuffer

RS = "\x1e"
BOTH = frozenset({TransferFormat.TEXT, TransferFormat.BINARY})
TEXT = frozenset({TransferFormat.TEXT})


def session(options: SignalROptions | None = None, formats: frozenset = BOTH, *, stateful: bool = False) -> Session:
    return Session(options or SignalROptions(), formats, lambda protocol: {}, allow_stateful=stateful)


def connected(options: SignalROptions | None = None, *, version: int = 1, stateful: bool = False) -> Session:
    s = session(options, stateful=stateful)
    assert s.receive(json.dumps({"protocol": "json", "version": version}) + RS) == []
    assert s.data_to_send() == ["{}" + RS]
    return s


def record(message: dict[str, Any]) -> str:
    return json.dumps(message) + RS


def invocation(iid: str, value: Any = 1) -> dict[str, Any]:
    return {"type": 1, "invocationId": iid, "target": "T", "arguments": [value]}


def queue_completion(s: Session, iid: str, value: Any = None, *, wait: bool = False) -> bool:
    message = Completion.with_result(iid, value)
    assert s.protocol is not None
    return s.queue(message, s.protocol.encode(message), wait=wait)


# --- the handshake -----------------------------------------------------------------------------


def test_a_json_handshake_is_answered_in_a_text_frame_of_its_own_and_what_follows_it_is_read() -> None:
    s = session()
    assert s.state is State.HANDSHAKE
    messages = s.receive('{"protocol":"json","version":1}' + RS + record(invocation("1")))
    assert s.state is State.CONNECTED and s.protocol is not None and s.protocol.name == "json"
    assert messages == [Invocation("T", [1], "1")]
    assert s.data_to_send() == ["{}" + RS]
    assert s.data_to_send() == []


def test_a_messagepack_handshake_is_answered_in_a_binary_frame_and_its_records_follow() -> None:
    body = MessagePackHubProtocol().encode(Invocation("T", [1], "1"))
    assert isinstance(body, bytes)
    s = session()
    assert s.receive(b'{"protocol":"messagepack","version":1}\x1e' + body[:3]) == []
    assert s.state is State.CONNECTED and s.protocol is not None and s.protocol.name == "messagepack"
    assert s.data_to_send() == [b"{}\x1e"]
    assert s.receive(body[3:]) == [Invocation("T", [1], "1")]


def test_handshakes_and_records_split_across_frames_and_several_records_in_one() -> None:
    s = session()
    assert s.receive('{"protocol":') == []
    assert s.state is State.HANDSHAKE
    assert s.receive('"json","version":1}' + RS + '{"type":1,"invocationId":"1",') == []
    assert s.state is State.CONNECTED
    assert s.receive('"target":"T","arguments":[1]}' + RS + record(invocation("2", 2)) + record({"type": 6})) == [
        Invocation("T", [1], "1"),
        Invocation("T", [2], "2"),
        Ping(),
    ]


def test_a_refused_handshake_raises_and_its_error_reply_is_the_goodbye() -> None:
    s = session(formats=TEXT)
    with pytest.raises(HandshakeError) as refused:
        s.receive('{"protocol":"messagepack","version":1}' + RS)
    assert str(refused.value) == (
        "Cannot use the 'messagepack' protocol on the current transport. "
        "The transport does not support 'Binary' transfer format."
    )
    assert s.state is State.HANDSHAKE
    s.close(CloseReason.ERROR, Close(error=str(refused.value)))
    assert s.state is State.CLOSING and s.close_reason is CloseReason.ERROR
    assert s.data_to_send() == [json.dumps({"error": str(refused.value)}, separators=(",", ":")) + RS]
    # Ended before the handshake without an error to tell: nothing is written.
    quiet = session()
    quiet.close(CloseReason.SHUTDOWN, Close(allow_reconnect=True))
    assert quiet.data_to_send() == []


def test_a_bad_record_raises_a_protocol_error() -> None:
    s = connected()
    with pytest.raises(ProtocolError, match="Error reading JSON."):
        s.receive("garbage" + RS)


# --- the state table ---------------------------------------------------------------------------


def test_the_table_names_every_state_and_closed_allows_nothing() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.CLOSED] == {}
    assert TRANSITIONS[State.HANDSHAKE][SessionEvent.ACCEPTED] is State.CONNECTED


def test_illegal_transitions_raise() -> None:
    s = connected()
    s.close(CloseReason.NORMAL)
    with pytest.raises(InvalidTransition, match="ENDING is not allowed in state CLOSING"):
        s.close(CloseReason.ERROR)
    s.transport_ended()
    assert s.state is State.CLOSED and s.close_reason is CloseReason.NORMAL
    with pytest.raises(InvalidTransition):
        s.transport_ended()
    with pytest.raises(InvalidTransition):
        s.close(CloseReason.ERROR)
    gone = session()
    gone.transport_ended(CloseReason.NORMAL)  # the transport went away before any handshake
    assert gone.state is State.CLOSED and gone.close_reason is CloseReason.NORMAL


def test_once_closing_nothing_is_read_or_queued_and_the_close_follows_what_waited() -> None:
    s = connected()
    assert queue_completion(s, "1", "a")
    s.close(CloseReason.TIMEOUT, Close(error="bye"))
    assert s.receive(record(invocation("2"))) == []
    assert not queue_completion(s, "3")
    assert not s.post_batch([Ping()], ['{"type":6}' + RS], '{"type":6}' + RS)
    assert s.protocol is not None
    assert s.data_to_send() == [s.protocol.encode(Completion.with_result("1", "a")) + '{"type":7,"error":"bye"}' + RS]
    s.written()
    s.transport_ended()
    assert s.data_to_send() == []


# --- the outbox's bound --------------------------------------------------------------------------


def test_past_the_outbox_bound_the_client_fell_behind_and_its_close_replaces_what_waited() -> None:
    s = connected(SignalROptions(max_send_queue=3))
    for i in range(3):
        assert queue_completion(s, str(i))
    in_flight = s.data_to_send()  # taken, not yet written: it still counts
    assert len(in_flight) == 1
    with pytest.raises(FellBehind) as behind:
        queue_completion(s, "3")
    assert str(behind.value) == (
        "Connection closed with an error. The client fell behind: more than 3 messages or 16777216 bytes were "
        "waiting to be sent to it (--max-send-queue, --max-send-queue-bytes). Reconnect and subscribe again."
    )
    s.written()
    assert queue_completion(s, "3")  # written: room again
    with pytest.raises(FellBehind):
        s.post_batch([Ping()] * 3, ['{"type":6}' + RS] * 3, '{"type":6}' * 3)
    s.close(CloseReason.FELL_BEHIND, Close(error=str(behind.value)), drop_queued=True)
    assert s.close_reason is CloseReason.FELL_BEHIND
    assert s.data_to_send() == [json.dumps({"type": 7, "error": str(behind.value)}, separators=(",", ":")) + RS]


def test_the_outbox_has_room_below_half_its_bounds() -> None:
    s = connected(SignalROptions(max_send_queue=4))
    for i in range(2):
        queue_completion(s, str(i))
    assert s.has_room
    queue_completion(s, "2")
    assert not s.has_room
    s.data_to_send()
    assert not s.has_room  # until written
    s.written()
    assert s.has_room


# --- stateful reconnect: numbering and Acks -------------------------------------------------------


def test_version_2_makes_a_buffer_only_when_the_transport_allows_it() -> None:
    assert connected(version=2, stateful=False).buffer is None
    assert connected(version=1, stateful=True).buffer is None
    assert connected(version=2, stateful=True).buffer is not None


def test_incoming_numbering_drops_duplicates_and_waits_for_sequence_after_a_reconnect() -> None:
    buffer = MessageBuffer()
    first = [Invocation("T", [], "1"), Ping(), StreamItem("s", 1), Completion("s")]
    assert [buffer.should_process(m) for m in first] == [True, True, True, True]
    assert buffer.latest_received == 3  # the Ping is not numbered
    buffer.detach()
    assert buffer.ack_due() is None  # no transport attached: nothing to send it on
    buffer.attach()
    assert buffer.ack_due() == Ack(3)

    assert not buffer.should_process(Invocation("T", [], "2"))  # ignored until the Sequence
    assert buffer.should_process(Sequence(2))
    buffer.reset_sequence(2)
    # The client re-sends 2 and 3 (our Ack had not reached it), then 4 is new.
    again = [StreamItem("s", 1), Completion("s"), Invocation("T", [], "9")]
    assert [buffer.should_process(m) for m in again] == [False, False, True]
    assert buffer.latest_received == 4


def test_a_sequence_beyond_what_was_received_is_a_protocol_error() -> None:
    buffer = MessageBuffer()
    buffer.should_process(Invocation("T", [], "1"))
    buffer.reset_sequence(2)  # the next one: fine
    with pytest.raises(ProtocolError, match="Sequence ID greater than amount of messages we've received."):
        buffer.reset_sequence(5)
    s = connected(version=2, stateful=True)
    with pytest.raises(ProtocolError, match="Sequence ID greater than amount of messages we've received."):
        s.receive(record({"type": 9, "sequenceId": 50}))


def test_acks_free_the_buffer_and_only_numbered_messages_are_kept() -> None:
    s = connected(SignalROptions(stateful_buffer_size=1000), version=2, stateful=True)
    assert s.buffer is not None
    for i in range(3):
        queue_completion(s, str(i), i)
    assert s.post_batch([Ping()], ['{"type":6}' + RS], '{"type":6}' + RS)
    assert len(s.data_to_send()) == 4  # a frame each
    s.written()
    assert s.buffer.kept() == [1, 2, 3]
    assert s.receive(record({"type": 8, "sequenceId": 2})) == []  # applied here, not returned
    assert s.buffer.kept() == [3]
    s.receive(record({"type": 8, "sequenceId": 7}))  # more than was sent: everything is acked, nothing breaks
    assert s.buffer.buffered_bytes == 0


def test_the_server_acks_what_it_processed_once() -> None:
    s = connected(version=2, stateful=True)
    assert s.receive(record(invocation("1")) + record({"type": 6}) + record(invocation("2"))) == [
        Invocation("T", [1], "1"),
        Ping(),
        Invocation("T", [1], "2"),
    ]
    assert s.acknowledge()
    assert not s.acknowledge()  # nothing new: no second Ack
    assert s.data_to_send() == ['{"type":8,"sequenceId":2}' + RS]


def test_messages_that_can_wait_are_held_back_while_the_replay_buffer_is_full() -> None:
    s = connected(SignalROptions(stateful_buffer_size=100), version=2, stateful=True)
    for i in range(3):
        message = StreamItem("s", "x" * 60)
        assert s.protocol is not None
        s.queue(message, s.protocol.encode(message), wait=True)
    assert len(s.data_to_send()) == 2  # the second passes the limit; the third waits for an Ack
    s.written()
    assert not s.writable
    queue_completion(s, "c")  # a Completion cannot wait, but keeps its place behind it
    assert s.data_to_send() == []
    s.receive(record({"type": 8, "sequenceId": 2}))
    assert s.writable
    assert len(s.data_to_send()) == 2
    assert s.buffer is not None and s.buffer.kept() == [3, 4]


def test_a_resume_sends_sequence_then_the_replay_before_anything_new_and_ignores_the_client_until_its_sequence() -> None:
    s = connected(version=2, stateful=True)
    s.receive(record(invocation("1")))
    for i in range(3):
        queue_completion(s, str(i), i)
    s.data_to_send()
    s.written()
    s.receive(record({"type": 8, "sequenceId": 1}))
    s.detach()
    assert s.detached
    queue_completion(s, "away", "while away")
    assert s.data_to_send() == []  # numbered and kept, not written
    s.resume()
    assert not s.detached
    queue_completion(s, "new", "after")
    assert [json.loads(frame.rstrip(RS)) for frame in s.data_to_send()] == [
        {"type": 9, "sequenceId": 2},
        {"type": 3, "invocationId": "1", "result": 1},
        {"type": 3, "invocationId": "2", "result": 2},
        {"type": 3, "invocationId": "away", "result": "while away"},
        {"type": 3, "invocationId": "new", "result": "after"},
    ]
    assert s.receive(record(invocation("x"))) == []  # before the client's Sequence
    # Its Sequence, then a re-send of what we processed (1) and something new (2).
    assert s.receive(record({"type": 9, "sequenceId": 1}) + record(invocation("1")) + record(invocation("2"))) == [
        Invocation("T", [1], "2")
    ]


def test_a_stateful_client_that_never_acks_falls_behind() -> None:
    s = connected(SignalROptions(max_send_queue_bytes=100, stateful_buffer_size=1000), version=2, stateful=True)
    for i in range(2):  # ~80 bytes each: written, never acknowledged
        queue_completion(s, str(i), "x" * 40)
        s.data_to_send()
        s.written()
    assert s.buffer is not None and s.buffer.buffered_bytes > 100
    with pytest.raises(FellBehind):
        queue_completion(s, "2")
