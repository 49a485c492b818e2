// Server-to-client streaming: connection.stream("ReadEventData", topic, streamId, from, follow).
// With follow, once `stored` items arrived the driver writes each of `live` (batches of events) on a
// second connection with SendEventData, waits for them to arrive, then disposes the subscription
// (CancelInvocation) and writes `afterCancel` to check that nothing more arrives.
// Spec (besides lib.mjs's): topic, streamId, fromTimestamp, follow, stored (count to wait for),
//   live: [[event]], afterCancel: [event], settleMs (default 300).
// Result: {items: [...], completed: bool, error: text|null, cancelSent: bool, afterCancelLines:
//   what the client's own trace saw arrive after the cancel, liveWrites, state, trace? (keepTrace)}
import { buildConnection, runDriver, settle } from "./lib.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

runDriver(async (spec) => {
  const trace = [];
  const reader = await buildConnection({ ...spec, trace: true }, { trace, label: "reader" });
  const writer = await buildConnection({ ...spec, trace: false }, { label: "writer" });
  await reader.start();
  await writer.start();
  const out = { items: [], completed: false, error: null };
  let wake = () => {};
  const waitFor = async (n) => {
    while (out.items.length < n && !out.completed && out.error === null) {
      await new Promise((r) => (wake = r));
    }
  };
  const stream = reader.stream("ReadEventData", spec.topic, spec.streamId, spec.fromTimestamp ?? 0, spec.follow ?? false);
  const subscription = stream.subscribe({
    next: (item) => { out.items.push(item); wake(); },
    complete: () => { out.completed = true; wake(); },
    error: (e) => { out.error = e && e.message !== undefined ? e.message : String(e); wake(); },
  });
  let expected = spec.stored ?? 0;
  await waitFor(expected);
  for (const batch of spec.live ?? []) {
    out.liveWrites = out.liveWrites ?? [];
    out.liveWrites.push(await settle(writer.invoke("SendEventData", spec.topic, spec.streamId, batch)));
    expected += batch.filter((e) => e.timestamp >= (spec.fromTimestamp ?? 0)).length;
  }
  await waitFor(spec.follow ? expected : Infinity);  // without follow: until the stream completes
  if (spec.follow && !out.completed && out.error === null) {
    const mark = trace.length;
    subscription.dispose();  // sends CancelInvocation (not awaitable: wait until it is on the wire)
    while (!trace.slice(mark).some((l) => l.message.includes("sending data"))) await sleep(5);
    out.cancelSent = true;
    if (spec.afterCancel) {
      await settle(writer.invoke("SendEventData", spec.topic, spec.streamId, spec.afterCancel));
    }
    await sleep(spec.settleMs ?? 300);
    out.afterCancelLines = trace.slice(mark).map((l) => l.message).filter((m) => /data received/.test(m));
  }
  out.state = reader.state;
  await reader.stop();
  await writer.stop();
  if (spec.keepTrace) out.trace = trace;
  return out;
});
