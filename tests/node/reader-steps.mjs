// The Reader hub from the real client: several connections (readers on /reader, writers on /hub)
// run a list of steps in order, and every client-method call a reader receives is recorded.
// Spec (besides lib.mjs's url/token/protocol/transport, which each connection may override):
//   connections: [{name, url, protocol?, transport?, listen?: true}]  listen: record
//     EventDataReceived, ParameterDataReceived and ActiveStreamsChanged
//   steps: [
//     {conn, invoke: "Method", args: [...]}       invoke and record the result (or error)
//     {http: {method, url, body | text}}            a fetch with the token (body: sent as JSON; text: as is)
//     {waitFor: {conn, count, target?}}             until conn has received `count` calls (of target)
//   ]
// Result: {received: {name: [{target, args}]}, steps: [{ok, result|error}], states: {name: state}}
import { buildConnection, runDriver, settle } from "./lib.mjs";

const TARGETS = ["EventDataReceived", "ParameterDataReceived", "ActiveStreamsChanged"];

runDriver(async (spec) => {
  const connections = new Map();
  const received = {};
  let wake = () => {};
  for (const c of spec.connections) {
    const conn = await buildConnection({ ...spec, ...c });
    received[c.name] = [];
    if (c.listen) {
      for (const target of TARGETS) {
        conn.on(target, (...args) => {
          received[c.name].push({ target, args });
          wake();
        });
      }
    }
    await conn.start();
    connections.set(c.name, conn);
  }
  const count = (name, target) => received[name].filter((r) => !target || r.target === target).length;
  const out = { steps: [] };
  for (const step of spec.steps) {
    if (step.invoke) {
      out.steps.push(await settle(connections.get(step.conn).invoke(step.invoke, ...(step.args ?? []))));
    } else if (step.http) {
      const response = await fetch(step.http.url, {
        method: step.http.method ?? "POST",
        headers: { Authorization: `Bearer ${spec.token}`, "Content-Type": "application/json" },
        body: step.http.text ?? (step.http.body === undefined ? undefined : JSON.stringify(step.http.body)),
      });
      out.steps.push({ ok: response.ok, result: { status: response.status, body: await response.text() } });
    } else if (step.waitFor) {
      const { conn, count: n, target } = step.waitFor;
      while (count(conn, target) < n) {
        await new Promise((r) => (wake = r));
      }
      out.steps.push({ ok: true, result: count(conn, target) });
    } else {
      throw new Error(`reader-steps: unknown step ${JSON.stringify(step)}`);
    }
  }
  out.received = received;
  out.states = {};
  for (const [name, conn] of connections) {
    out.states[name] = conn.state;
    await conn.stop();
  }
  return out;
});
