// A client whose token expires while it is connected, as an application with a token cache writes it:
//   accessTokenFactory returns the first of spec.tokens whose exp is more than 1 s away (a cache
//   refreshing a token about to expire), and withAutomaticReconnect() is on.
//   start(); spec.before calls ({method, args}); wait for onreconnecting then onreconnected (or
//   onclose, which `closed` records unless it is the final stop()); spec.after calls on the same
//   HubConnection; stop().
// Result: {started, before: [{ok, result|error}], reconnecting, reconnected, closed,
//   after: [...], factory: [index of the token returned, per call], trace?}
import { buildConnection, errorText, runDriver, settle } from "./lib.mjs";

function expiresAt(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).exp;
}

runDriver(async (spec) => {
  const trace = [];
  const factory = [];
  const accessTokenFactory = () => {
    const now = Date.now() / 1000;
    let index = spec.tokens.findIndex((jwt) => expiresAt(jwt) > now + 1);
    if (index < 0) index = spec.tokens.length - 1;
    factory.push(index);
    return spec.tokens[index];
  };
  const connection = await buildConnection({ automaticReconnect: true, ...spec }, { trace, accessTokenFactory });
  const out = { started: false, before: [], after: [], reconnecting: null, reconnected: null, closed: null, factory };

  let settled;
  const back = new Promise((resolve) => (settled = resolve));
  connection.onreconnecting((error) => {
    out.reconnecting = error ? errorText(error) : "no error";
  });
  connection.onreconnected((connectionId) => {
    out.reconnected = connectionId ?? "no id";
    settled();
  });
  let stopping = false;
  connection.onclose((error) => {
    if (stopping) return; // our own stop() at the end
    out.closed = error ? errorText(error) : "closed";
    settled();
  });

  await connection.start(); // a failed start is the driver's crash (send-events.mjs reports one as a result)
  out.started = true;
  out.connectionId = connection.connectionId;
  for (const call of spec.before ?? []) {
    out.before.push(await settle(connection.invoke(call.method, ...(call.args ?? []))));
  }
  await back;
  out.state = connection.state;
  for (const call of spec.after ?? []) {
    out.after.push(await settle(connection.invoke(call.method, ...(call.args ?? []))));
  }
  stopping = true;
  await connection.stop();
  if (spec.trace) out.trace = trace;
  return out;
});
