// The hub's limits as the real client meets them:
//   opens spec.connections connections one after another (start() settled, kept open);
//   on the first that started, opens spec.streams ReadEventData(topic, "s<i>", null, true) streams
//   and waits until each has either errored or stayed open for spec.settleMs; then
//   invokes SendEventData(topic, streamId, [goodEvent]) on it.
// Result: {starts: [{ok, error}], streams: [{error|null}], after: {ok,...}}
import { buildConnection, runDriver, settle, errorText } from "./lib.mjs";

runDriver(async (spec) => {
  const connections = [];
  const starts = [];
  for (let i = 0; i < (spec.connections ?? 1); i++) {
    const connection = await buildConnection(spec, { label: `c${i}` });
    const started = await settle(connection.start());
    starts.push(started.ok ? { ok: true } : { ok: false, error: started.error });
    if (started.ok) connections.push(connection);
  }
  const out = { starts, streams: [] };
  const first = connections[0];
  if (first) {
    const ended = [];
    for (let i = 0; i < (spec.streams ?? 0); i++) {
      ended.push(new Promise((resolve) => {
        first.stream("ReadEventData", spec.topic, `s${i}`, null, true).subscribe({
          next: () => {},
          error: (error) => resolve({ error: errorText(error) }),
          complete: () => resolve({ error: null, completed: true }),
        });
        setTimeout(() => resolve({ error: null }), spec.settleMs ?? 1000);
      }));
    }
    out.streams = await Promise.all(ended);
    out.after = await settle(first.invoke("SendEventData", spec.topic, spec.streamId, [spec.goodEvent]));
  }
  for (const connection of connections) await connection.stop();
  return out;
});
