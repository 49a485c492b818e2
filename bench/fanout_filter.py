"""What filtering each delivery by the reader's scope (issue 14, reader/group_fanout.py TopicReaders)
adds to the Reader hub's fan-out, in-process: one change of `--events` events to N subscribers of
one `*` subscription, `GroupFanOut.deliver` timed in CPU time (queueing on every connection
included, the connections' socket writes not: they happen after, outside the timed part).

    python -m bench.fanout_filter                       # 1,000 subscribers, 10 events a change
    python -m bench.fanout_filter --subscribers 1000 --events 10 --rounds 15 --changes 20

Cases, measured in alternating rounds (the order rotated each round): "unfiltered" (the filter replaced by one that lets every
recipient through: the fan-out as before issue 14), "admin" (every connection on one admin token),
"one scoped token" (read:cars read:bikes-* shared by every connection), "a token each" (N token-file
lines, as a fleet of dashboards with one token each). Prints per case the median CPU µs per change
and per recipient, the ratio to "unfiltered", and the filter alone (TopicReaders.among on the group).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from hub.auth.authenticator import AuthConfig, Authenticator
from hub.auth.principal import ANONYMOUS
from hub.reader import group_fanout
from hub.reader.group_fanout import GroupFanOut
from hub.reader.hub import ReaderHub
from hub.reader.subscriptions import Key, SubscriptionKind
from hub.signalr.connection import HubConnection
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.options import SignalROptions
from hub.signalr.protocols.base import TransferFormat
from hub.signalr.transports.base import Transport
from hub.streams.models import Event
from hub.streams.service import StreamService
from hub.streams.store.broadcast import Change, ChangeKind
from hub.streams.store.memory import MemoryStore

TOPIC, STREAM = "cars", "s1"
GROUP = Key(SubscriptionKind.EVENT, "*", "*", "*").group


class NullTransport(Transport):
    name = "null"
    transfer_formats = (TransferFormat.TEXT,)

    async def send(self, data: str | bytes) -> None:
        pass

    async def close(self) -> None:
        pass


class Unfiltered(group_fanout.TopicReaders):
    def may(self, connection_id: str) -> bool:
        return True

    def among(self, recipients):
        return recipients


async def subscribers(users: list) -> tuple[GroupFanOut, list[HubConnection]]:
    hub = ReaderHub(StreamService(MemoryStore()))
    dispatcher = HubDispatcher(hub)
    key = Key.parse(GROUP)
    connections = []
    for i, user in enumerate(users):
        conn = HubConnection(f"c{i}", NullTransport(), dispatcher, SignalROptions(max_send_queue=1_000_000), user=user)
        await conn.receive('{"protocol":"json","version":1}\x1e', via=conn.transport)
        hub.clients.groups.add(key.group, conn.connection_id)
        hub.interest.add(key)
        connections.append(conn)
    return GroupFanOut(hub.service, hub.clients, hub.interest), connections


async def drain() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def main(args: argparse.Namespace) -> None:
    n = args.subscribers
    folder = Path(tempfile.mkdtemp())
    (folder / "shared").write_text("tok name=dash read:cars read:bikes-*\n")
    (folder / "each").write_text("".join(f"tok{i} name=dash{i} read:cars read:bikes-*\n" for i in range(n)))
    shared = Authenticator(AuthConfig(token_file=str(folder / "shared")))
    each = Authenticator(AuthConfig(token_file=str(folder / "each")))
    cases = {
        "unfiltered": [ANONYMOUS] * n,
        "admin": [ANONYMOUS] * n,
        "one scoped token": [shared.principal_for("tok")] * n,
        "a token each": [each.principal_for(f"tok{i}") for i in range(n)],
    }
    fanouts = {name: await subscribers(users) for name, users in cases.items()}
    events = [Event(id="Alert", timestamp=i, value="x", tags={}) for i in range(args.events)]
    change = Change(ChangeKind.EVENTS, TOPIC, STREAM, events=events)
    timings: dict[str, list[float]] = {name: [] for name in cases}
    filter_only: dict[str, list[float]] = {name: [] for name in cases}
    filtering = group_fanout.TopicReaders
    order = list(fanouts.items())
    for round_number in range(args.rounds):
        k = round_number % len(order)  # each case takes each place in the round in turn
        for name, (fanout, _) in order[k:] + order[:k]:
            group_fanout.TopicReaders = Unfiltered if name == "unfiltered" else filtering
            spent = 0.0
            for _ in range(args.changes):
                started = time.process_time()
                fanout.deliver(change)
                spent += time.process_time() - started
                await drain()
            timings[name].append(spent / args.changes)
            readers = (Unfiltered if name == "unfiltered" else filtering)(fanout.clients, TOPIC)
            started = time.process_time()
            readers.among(fanout.clients.groups.members(GROUP))
            filter_only[name].append(time.process_time() - started)
    group_fanout.TopicReaders = filtering
    base = statistics.median(timings["unfiltered"])
    for name, spent in timings.items():
        median, alone = statistics.median(spent), statistics.median(filter_only[name])
        print(f"{name:>18}: deliver {median * 1e6:6.0f} µs CPU a change ({median / n * 1e9:5.0f} ns a recipient, "
              f"{median / base:4.2f} × unfiltered); the filter alone {alone / n * 1e9:5.0f} ns a recipient")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10, help="events in each change")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--changes", type=int, default=20, help="changes a case delivers in each round")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
