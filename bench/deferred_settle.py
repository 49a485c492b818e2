"""The hub's event-loop cost per invocation when a hub method's result settles later (a sqlite or
redis store's future) against one settled at call time (the memory store's `Resolved`), in one
process: no sockets, no store, so only the SignalR side is timed (issue 15, "the loop side").

    python -m bench.deferred_settle                          # this tree, 5 rounds
    python -m bench.deferred_settle --baseline /tmp/before   # and another tree's hub/, rounds alternating

Each round drives 4 `HubConnection`s over a transport that drops what it is given: every connection
receives frames of 50 SendEventData-shaped JSON invocations of one event; the hub method answers
with `Deferred(future, void=True)` as WriterHub does, and counts the write with the metrics'
`WrittenCounts` as StreamService does; the futures are then settled the way the sqlite store's
writer settles a commit (one loop callback setting every result), and the loop runs until every
Completion is queued and written. `settled` runs the same with an already settled result. Reports
CPU µs per invocation (process time), medians of the rounds, and after ÷ before with --baseline.
Each tree runs in a process of its own (its `hub` package first on sys.path). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in the child process (the tree's root first on sys.path): prints {"future": µs, "settled": µs}.
CHILD = r'''
import asyncio, json, sys, time
from typing import Any
import uvloop
from hub.metrics.signalr import SignalRMetrics
from hub.metrics.writes import WrittenCounts
from hub.signalr.call import CallContext
from hub.signalr.connection import HubConnection
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.hub import Deferred, Hub, hub_method
from hub.signalr.options import SignalROptions
from hub.signalr.protocols.base import TransferFormat
from hub.signalr.transports.base import Transport
from hub.streams.store.resolved import Resolved

RS, CONNECTIONS, IN_FLIGHT, BATCHES = "\x1e", 4, 50, int(sys.argv[1])

class Dropped(Transport):
    name = "bench"
    transfer_formats = frozenset({TransferFormat.TEXT, TransferFormat.BINARY})
    async def send(self, data): pass
    async def close(self): pass

class WriterLike(Hub):
    def __init__(self, settled):
        self.settled, self.pending, self.tally = settled, [], WrittenCounts()
    @hub_method("SendEventData")
    async def send_event_data(self, call: CallContext, topic: Any, stream_id: Any, events: Any) -> Deferred:
        if self.settled:
            written = Resolved(len(events))
        else:
            written = asyncio.get_running_loop().create_future()
            self.pending.append((written, len(events)))
        self.tally.events(written)
        return Deferred(written, void=True)

def settle(pending):  # as the sqlite writer's _resolve: one callback settles a commit's futures
    for future, count in pending:
        future.set_result(count)

async def run(settled):
    hub = WriterLike(settled)
    dispatcher = HubDispatcher(hub)
    dispatcher.observer = SignalRMetrics("WriterHub", (m.name for m in dispatcher.methods.values()))
    conns = []
    for k in range(CONNECTIONS):
        transport = Dropped()
        conn = HubConnection(f"c{k}", transport, dispatcher, SignalROptions())
        await conn.receive(json.dumps({"protocol": "json", "version": 1}) + RS, via=transport)
        conns.append((conn, transport))
    event = [{"timestamp": 1700000000000000000, "id": "temperature", "value": "21.5"}]
    iid = 0
    frames = []
    for _ in range(BATCHES):
        round_frames = []
        for _ in conns:
            records = []
            for _ in range(IN_FLIGHT):
                iid += 1
                records.append(json.dumps({"type": 1, "invocationId": str(iid), "target": "SendEventData",
                                           "arguments": ["topic", "stream", event]}) + RS)
            round_frames.append("".join(records))
        frames.append(round_frames)
    loop = asyncio.get_running_loop()
    started = time.process_time()
    for round_frames in frames:
        for (conn, transport), data in zip(conns, round_frames):
            await conn.receive(data, via=transport)
        pending, hub.pending = hub.pending, []
        loop.call_soon(settle, pending)
        for _ in range(3):  # the settle, the done-callbacks, the writers' flushes
            await asyncio.sleep(0)
    spent = time.process_time() - started
    assert all(conn.session.queued == 0 for conn, _ in conns), "not every Completion was written"
    for conn, _ in conns:
        conn.gone()
    return spent / (BATCHES * CONNECTIONS * IN_FLIGHT) * 1e6

uvloop.install()
print(json.dumps({"future": asyncio.run(run(False)), "settled": asyncio.run(run(True))}))
'''


def measure(tree: Path, batches: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(batches)], cwd=tree, check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    return json.loads(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", help="another tree whose hub/ runs beside this one, rounds alternating")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=500, help="frames of 50 invocations per connection, a round")
    opts = p.parse_args()
    trees = {"hub": ROOT, **({"baseline": Path(opts.baseline).resolve()} if opts.baseline else {})}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for k in range(opts.rounds):
        for name, tree in trees.items():
            runs[name].append(measure(tree, opts.batches))
            print(f"round {k + 1}/{opts.rounds} {name}: {runs[name][-1]}", file=sys.stderr)
    result: dict = {"scenario": "deferred_settle", "rounds": opts.rounds, "invocations_a_round": opts.batches * 200}
    for name, rows in runs.items():
        medians = {kind: round(statistics.median(r[kind] for r in rows), 2) for kind in ("future", "settled")}
        result[name] = {"cpu_us_per_invocation": medians,
                        "future_minus_settled_us": round(medians["future"] - medians["settled"], 2)}
    if opts.baseline:
        result["after_vs_before_per_cpu"] = {
            kind: round(result["baseline"]["cpu_us_per_invocation"][kind] / result["hub"]["cpu_us_per_invocation"][kind], 3)
            for kind in ("future", "settled")
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
