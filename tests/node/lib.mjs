// Shared plumbing for the driver scripts: read the JSON spec, build a HubConnection exactly as an
// application would, collect the client's own trace (for protocol-notes/transcripts), and print
// one JSON object on stdout. The Python side (tests/conftest.py, `node` fixture) parses it.
//
// Spec fields understood here (all optional except url):
//   url          hub URL, e.g. http://127.0.0.1:PORT/hub
//   token        the access token
//   tokenMode    "factory" (default: accessTokenFactory), "query" (?access_token= in the URL),
//                "header" (options.headers.Authorization) or "none"
//   protocol     "json" (default) or "messagepack"
//   transport    "WebSockets" | "ServerSentEvents" | "LongPolling" (default: negotiate picks)
//   skipNegotiation  true to open the WebSocket directly
//   statefulReconnect  true for withStatefulReconnect() (statefulBufferSize: its bufferSize)
//   automaticReconnect true for withAutomaticReconnect() (or an array: its retry delays in ms)
//   headers      more request headers (Node sends them on every request, the WebSocket upgrade included)
//   trace        true to record the client's Trace log with message content
//   timeoutMs    overall watchdog (default 20000)
import signalR from "@microsoft/signalr";

export { signalR };

export function readSpec() {
  const raw = process.argv[2] ?? process.env.DRIVER_SPEC;
  if (!raw) {
    throw new Error("driver: pass the JSON spec as argv[2] or in DRIVER_SPEC");
  }
  return JSON.parse(raw);
}

// A logger that keeps every line in memory, so the test can see what the client saw.
export function memoryLogger(lines, label) {
  return {
    log(level, message) {
      lines.push({ t: Date.now(), conn: label, level: signalR.LogLevel[level], message });
    },
  };
}

export async function hubProtocol(name) {
  if (!name || name === "json") {
    return new signalR.JsonHubProtocol();
  }
  if (name === "messagepack") {
    const msgpack = (await import("@microsoft/signalr-protocol-msgpack")).default;
    return new msgpack.MessagePackHubProtocol();
  }
  throw new Error(`driver: unknown protocol ${name}`);
}

// accessTokenFactory: the driver's own factory (tokenMode "factory"), instead of one returning spec.token.
export async function buildConnection(spec, { trace = [], label = "conn", accessTokenFactory } = {}) {
  const options = {};
  let url = spec.url;
  const given = accessTokenFactory !== undefined || (spec.token !== undefined && spec.token !== null);
  const mode = spec.tokenMode ?? (given ? "factory" : "none");
  if (mode === "factory") {
    options.accessTokenFactory = accessTokenFactory ?? (() => spec.token);
  } else if (mode === "query") {
    url += (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(spec.token);
  } else if (mode === "header") {
    options.headers = { Authorization: `Bearer ${spec.token}` };
  } else if (mode !== "none") {
    throw new Error(`driver: unknown tokenMode ${mode}`);
  }
  if (spec.headers) {  // more request headers (Node only), e.g. an Origin a device always sends
    options.headers = { ...(options.headers ?? {}), ...spec.headers };
  }
  if (spec.transport) {
    options.transport = signalR.HttpTransportType[spec.transport];
  }
  if (spec.skipNegotiation) {
    options.skipNegotiation = true;
  }
  if (spec.trace) {
    options.logMessageContent = true;
  }
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .withHubProtocol(await hubProtocol(spec.protocol))
    .configureLogging(spec.trace ? memoryLogger(trace, label) : signalR.NullLogger.instance);
  if (spec.automaticReconnect) {
    builder.withAutomaticReconnect(Array.isArray(spec.automaticReconnect) ? spec.automaticReconnect : undefined);
  }
  if (spec.statefulReconnect) {
    builder.withStatefulReconnect(spec.statefulBufferSize ? { bufferSize: spec.statefulBufferSize } : undefined);
  }
  return builder.build();
}

// Settle a promise into a JSON-able record instead of throwing.
export async function settle(promise) {
  try {
    const result = await promise;
    return { ok: true, result: result === undefined ? null : result };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}

export function errorText(error) {
  return error && error.message !== undefined ? error.message : String(error);
}

// Print one JSON line and exit once it is flushed.
function finish(value, code) {
  process.stdout.write(JSON.stringify(value) + "\n", () => process.exit(code));
}

// Run the driver body with a watchdog; print its result (or the crash) as one JSON line.
export function runDriver(body) {
  let spec;
  try {
    spec = readSpec();
  } catch (error) {
    finish({ crashed: errorText(error) }, 2);
    return;
  }
  const timeoutMs = spec.timeoutMs ?? 20000;
  const watchdog = setTimeout(() => {
    finish({ crashed: `driver watchdog: no result after ${timeoutMs} ms` }, 3);
  }, timeoutMs);
  body(spec).then(
    (result) => {
      clearTimeout(watchdog);
      finish(result, 0);
    },
    (error) => {
      clearTimeout(watchdog);
      finish({ crashed: errorText(error), stack: error?.stack }, 1);
    },
  );
}
