// Bad calls on one connection must get their error and hurt nobody:
//   opens connection A and connection B; on A makes each spec.calls entry
//   ({method, args}) with invoke() and records the error text; then A and B each invoke
//   SendEventData(topic, streamId, [goodEvent]) to prove both still work.
// Result: {calls: [{ok, error|result}], stateA, afterA: {ok,...}, afterB: {ok,...}, closedA: null unless A was closed}
import { buildConnection, runDriver, settle, errorText } from "./lib.mjs";

runDriver(async (spec) => {
  const trace = [];
  const a = await buildConnection(spec, { trace, label: "A" });
  const b = await buildConnection(spec, { trace, label: "B" });
  let closedA = null;
  a.onclose((error) => {
    closedA = error ? errorText(error) : "closed";
  });
  await a.start();
  await b.start();

  const out = { calls: [] };
  for (const call of spec.calls ?? []) {
    out.calls.push(await settle(a.invoke(call.method, ...(call.args ?? []))));
  }
  out.stateA = a.state;
  out.afterA = await settle(a.invoke("SendEventData", spec.topic, spec.streamId, [spec.goodEvent]));
  out.afterB = await settle(b.invoke("SendEventData", spec.topic, spec.streamId, [spec.goodEventB ?? spec.goodEvent]));
  out.closedA = closedA;
  await a.stop();
  await b.stop();
  if (spec.trace) out.trace = trace;
  return out;
});
