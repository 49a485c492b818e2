// One connection, as an application writes events:
//   start(); [CreateStream(topic, properties)]; SendEventData(topic, streamId, batch) per batch;
//   stop().
// Spec (besides lib.mjs's): topic, streamId (or createStream: {properties}), batches: [[event]],
//   pipeline: true to send all invokes at once and await them together (order test),
//   fireAndForget: true to use send() instead of invoke().
// Result: {started, startError?, streamId?, created?, results: [{ok, result|error}], state, trace?}
import { buildConnection, runDriver, settle } from "./lib.mjs";

runDriver(async (spec) => {
  const trace = [];
  const connection = await buildConnection(spec, { trace });
  const out = { started: false, results: [] };

  const start = await settle(connection.start());
  if (!start.ok) {
    out.startError = start.error;
    if (spec.trace) out.trace = trace;
    return out;
  }
  out.started = true;
  out.connectionId = connection.connectionId;

  let streamId = spec.streamId;
  if (spec.createStream) {
    out.created = await settle(connection.invoke("CreateStream", spec.topic, spec.createStream.properties ?? {}));
    if (out.created.ok && out.created.result) streamId = out.created.result.streamId;
  }
  out.streamId = streamId ?? null;

  const batches = spec.batches ?? [];
  const call = (batch) =>
    spec.fireAndForget
      ? connection.send("SendEventData", spec.topic, streamId, batch)
      : connection.invoke("SendEventData", spec.topic, streamId, batch);
  if (spec.pipeline) {
    out.results = await Promise.all(batches.map((batch) => settle(call(batch))));
  } else {
    for (const batch of batches) {
      out.results.push(await settle(call(batch)));
    }
  }
  out.state = connection.state;
  await connection.stop();
  if (spec.trace) out.trace = trace;
  return out;
});
