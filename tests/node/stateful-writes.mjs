// Writes through a connection built with withStatefulReconnect(), keeping `window` invocations of
// SendEventData in flight, while the test's TCP proxy cuts the WebSocket under it.
// Spec (besides lib.mjs's; statefulReconnect is forced on): topic, streamId, batches: [[event]],
//   window (default 10), stream: {items: [...]} to also send items through StreamEventData on a
//   Subject during the writes (its result is in out.stream).
// Result: {results: [{ok, result|error}], stream?, closedWith: text|null, state, sockets (how many
//   WebSockets the client opened: > 1 means it reconnected), handshakeVersion2, trace?}
import { signalR, buildConnection, runDriver, settle, errorText } from "./lib.mjs";

runDriver(async (spec) => {
  const trace = [];
  const connection = await buildConnection({ ...spec, statefulReconnect: true, trace: true }, { trace });
  const out = { results: [], closedWith: null };
  connection.onclose((error) => {
    out.closedWith = error ? errorText(error) : "closed";
  });
  await connection.start();
  const subject = spec.stream ? new signalR.Subject() : null;
  const streamed = subject ? settle(connection.invoke("StreamEventData", spec.topic, spec.streamId + "-up", subject)) : null;
  const batches = spec.batches ?? [];
  const window = spec.window ?? 10;
  const results = new Array(batches.length);
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const i = next++;
      results[i] = await settle(connection.invoke("SendEventData", spec.topic, spec.streamId, batches[i]));
      if (subject && i < spec.stream.items.length) subject.next(spec.stream.items[i]);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  if (subject) {
    for (let i = batches.length; i < spec.stream.items.length; i++) subject.next(spec.stream.items[i]);
    subject.complete();
    out.stream = await streamed;
  }
  out.results = results;
  out.state = connection.state;
  const messages = trace.map((l) => l.message);
  out.sockets = messages.filter((m) => m.startsWith("WebSocket connected to")).length;
  out.handshakeVersion2 = messages.some((m) => m.includes("sending data") && m.includes('"version":2'));
  await connection.stop();
  if (spec.keepTrace) out.trace = trace.filter((l) => !l.message.includes("data received") && !l.message.includes("sending data"));
  return out;
});
