// The web app under test: what a page on another origin does with @microsoft/signalr (the browser
// bundle, global `signalR`). tests/node/browser-run.mjs calls window.runScenario(spec) for each
// scenario and gets a JSON-able result back; the page also shows each outcome (for the screenshot).
//
// spec: {name, hubUrl, token (absent: no accessTokenFactory), transport (absent: negotiate picks),
//        protocol ("json" | "messagepack"), topic, streamId, events, reconnect: {events} (optional),
//        expectRefusal (start() should fail)}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("origin").textContent = location.origin;
});

function errorText(error) {
  return error && error.message !== undefined ? error.message : String(error);
}

function show(spec, outcome, ok) {
  document.getElementById("hub").textContent = spec.hubUrl;
  const row = document.createElement("tr");
  for (const text of [spec.name, spec.transport ?? "(negotiated)", spec.protocol ?? "json", outcome]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.appendChild(cell);
  }
  row.lastChild.className = ok ? "ok" : "fail";
  document.getElementById("results").appendChild(row);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// GET the stream's events back over the HTTP API: a cross-origin fetch with a bearer token, so the
// browser makes a CORS preflight first.
async function readBack(spec) {
  const base = spec.hubUrl.replace(/\/hub$/, "");
  const response = await fetch(`${base}/topics/${spec.topic}/streams/${spec.streamId}/events/data`, {
    headers: { Authorization: `Bearer ${spec.token}` },
  });
  return { status: response.status, body: await response.json() };
}

window.runScenario = async function runScenario(spec) {
  const logs = [];
  const logger = { log: (level, message) => logs.push(`${signalR.LogLevel[level]}: ${message}`) };
  const options = {};
  if (spec.token) options.accessTokenFactory = () => spec.token;
  if (spec.transport) options.transport = signalR.HttpTransportType[spec.transport];
  let builder = new signalR.HubConnectionBuilder().withUrl(spec.hubUrl, options).configureLogging(logger);
  if (spec.protocol === "messagepack") {
    builder = builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
  }
  // Retry every 300 ms for 15 s (the default waits 0, 2, 10, 30 s): the test restarts the hub at once.
  if (spec.reconnect) builder = builder.withAutomaticReconnect([0, ...Array(50).fill(300)]);
  const connection = builder.build();
  const result = { started: false };
  let closeError;
  const closed = new Promise((resolve) => connection.onclose((error) => {
    closeError = error ? errorText(error) : null;
    resolve();
  }));

  try {
    await withTimeout(connection.start(), 15000, "start");
  } catch (error) {
    result.startError = errorText(error);
    show(spec, `refused${spec.expectRefusal ? " (as it should be)" : ""}: ${result.startError}`, !!spec.expectRefusal);
    return result;
  }
  result.started = true;
  const selected = logs.map((l) => /Selecting transport '(\w+)'/.exec(l)).find(Boolean);
  result.transport = selected ? selected[1] : null;
  try {
    result.invoke = await withTimeout(connection.invoke("SendEventData", spec.topic, spec.streamId, spec.events), 10000, "invoke");
    result.readBack = await readBack(spec);

    if (spec.reconnect) {
      const reconnected = new Promise((resolve) => connection.onreconnected((id) => resolve(id)));
      const reconnecting = new Promise((resolve) => connection.onreconnecting((error) => resolve(error ? errorText(error) : null)));
      await window.notifyTest({ event: "waiting-for-restart", scenario: spec.name });
      const waitStarted = Date.now();
      result.reconnectingError = await withTimeout(reconnecting, 30000, "onreconnecting");
      await withTimeout(reconnected, 30000, "onreconnected");
      result.reconnected = true;
      result.reconnectMs = Date.now() - waitStarted;
      result.invokeAfter = await withTimeout(
        connection.invoke("SendEventData", spec.topic, spec.streamId, spec.reconnect.events), 10000, "invoke after reconnect");
      result.readBackAfter = await readBack(spec);
    }
  } catch (error) {
    result.error = errorText(error);
  }
  await connection.stop();
  await withTimeout(closed, 5000, "onclose");
  result.state = connection.state;
  result.closeError = closeError;
  const ok = !result.error && result.state === "Disconnected";
  show(spec, ok ? `${spec.events.length} event(s) sent and read back${spec.reconnect ? ", reconnected" : ""}; stopped` : (result.error ?? result.state), ok);
  if (!ok) result.logs = logs.slice(-40);
  return result;
};
