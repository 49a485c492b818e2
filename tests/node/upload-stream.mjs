// Client-to-server streaming with the client's Subject, as an application writes it:
//   const subject = new signalR.Subject();
//   const done = connection.invoke("StreamEventData", topic, streamId, subject);  // or send()
//   subject.next(item) ...; subject.complete();   // or subject.error(new Error(text))
// Spec (besides lib.mjs's): method (default "StreamEventData"), topic, streamId, items: [item],
//   send: true for send() (fire-and-forget, then a final invoke of SendEventData with `after` to
//   know it was applied), error: text to end the stream with subject.error instead of complete(),
//   itemDelayMs: pause between items (default 0).
// Result: {result: {ok, result|error}, after?, state, trace?}
import { signalR, buildConnection, runDriver, settle } from "./lib.mjs";

runDriver(async (spec) => {
  const trace = [];
  const connection = await buildConnection(spec, { trace });
  await connection.start();
  const subject = new signalR.Subject();
  const method = spec.method ?? "StreamEventData";
  const out = {};
  const call = spec.send
    ? connection.send(method, spec.topic, spec.streamId, subject)
    : connection.invoke(method, spec.topic, spec.streamId, subject);
  const settled = settle(call);
  for (const item of spec.items ?? []) {
    subject.next(item);
    if (spec.itemDelayMs) await new Promise((r) => setTimeout(r, spec.itemDelayMs));
  }
  if (spec.error) {
    subject.error(new Error(spec.error));
  } else {
    subject.complete();
  }
  out.result = await settled;
  if (spec.after) {
    out.after = await settle(connection.invoke("SendEventData", spec.topic, spec.streamId, spec.after));
  }
  out.state = connection.state;
  await connection.stop();
  if (spec.trace) out.trace = trace;
  return out;
});
