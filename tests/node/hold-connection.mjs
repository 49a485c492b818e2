// One connection that stays open until told: start(); SendEventData(topic, streamId, batch) once;
// print {"connected": true, connectionId, transport, sent}; then wait. Closing stdin stops the
// connection cleanly (stop(), which sends DELETE over long polling) and prints the final result;
// a kill makes the connection vanish without a word (the hub must reclaim it).
// Spec (besides lib.mjs's): topic, streamId, batch: [event].
// Lines on stdout: the "connected" line, then {"stopped": true, closeError} (or {"closed": …} if
// the server closed first).
import { buildConnection, errorText, runDriver, settle } from "./lib.mjs";

runDriver(async (spec) => {
  const connection = await buildConnection(spec);
  let closed;
  const closedOnce = new Promise((resolve) => {
    connection.onclose((error) => {
      closed = error ? errorText(error) : null;
      resolve();
    });
  });
  const start = await settle(connection.start());
  if (!start.ok) {
    return { connected: false, startError: start.error };
  }
  const sent = await settle(connection.invoke("SendEventData", spec.topic, spec.streamId, spec.batch ?? []));
  process.stdout.write(
    JSON.stringify({
      connected: true,
      connectionId: connection.connectionId,
      transport: connection.connection.transport?.constructor?.name ?? null,
      sent,
    }) + "\n",
  );
  const stdinClosed = new Promise((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
  await Promise.race([stdinClosed, closedOnce]);
  if (closed !== undefined) {
    return { closed };
  }
  await connection.stop();
  await closedOnce;
  return { stopped: true, closeError: closed };
});
