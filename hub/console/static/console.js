// The live console: streams with their counts and last activity (HTTP read API, kept current by the
// Reader hub's ActiveStreamsChanged; the list itself is stream-list.js), a live tail of one stream
// (Reader hub: SubscribeToEvent with "*"), the chosen stream's page (stream-page.js: details, live
// chart, history, quarantine) and a form sending a test event (Writer hub: SendEventData). The token
// is asked for once and kept in sessionStorage (this tab only). GET /whoami says what the token may
// do: what it may not (sending to a topic without write:<topic>) is disabled, with the reason shown.
import { HubConnection } from "./signalr.js";
import { StreamList } from "./stream-list.js";
import { StreamPage } from "./stream-page.js";

const TOKEN_KEY = "hub-console-token";
const CHOSEN_KEY = "hub-console-stream";
const MAX_TAIL = 200; // events kept in the tail
const MAX_TOPICS = 1000; // topics listed; the list says when there are more
const LIST_CONCURRENCY = 4; // topic listings read at once
const REFRESH_MS = 10000; // the listing is re-read this often (counts change with every write)
const RETRY_MS = [1000, 2000, 5000, 10000];

const $ = (id) => document.getElementById(id);
// Where the hub is, as this script was loaded from it (…/console/console.js): behind a proxy that
// serves the hub under a prefix (--root-path), the prefix is part of it.
const base = new URL("..", import.meta.url).href.replace(/\/$/, "");

// #stream=<topic>/<stream> (each part URL-encoded) opens that stream's page: a link to it can be shared.
function chosenFromHash() {
  const match = /^#stream=([^/]+)\/(.+)$/.exec(window.location.hash);
  return match ? { topic: decodeURIComponent(match[1]), stream: decodeURIComponent(match[2]) } : null;
}

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  reader: null,
  writer: null,
  streams: new Map(), // "topic\u0000stream" -> summary (StreamInfo JSON)
  chosen: chosenFromHash() || JSON.parse(sessionStorage.getItem(CHOSEN_KEY) || "null"), // {topic, stream}
  retries: 0,
  me: null, // GET /whoami: {user, scopes, admin, expiresAt}
  refreshTimer: null,
  tailCount: 0,
};

const key = (topic, stream) => `${topic}\u0000${stream}`;

const ctx = { token: () => state.token, refused: () => logout("The hub refused this token.") };
const streamList = new StreamList(ctx, { onChoose: (topic, stream) => choose(topic, stream), chosen: () => state.chosen });
const streamPage = new StreamPage(ctx);

// --- token ------------------------------------------------------------------------------------------

function showLogin(message) {
  $("main").hidden = true;
  $("forget-token").hidden = true;
  $("login").hidden = false;
  $("token-error").textContent = message || "";
  $("token-input").focus();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  for (const conn of [state.reader, state.writer]) if (conn) conn.stop();
  state.reader = state.writer = null;
  clearInterval(state.refreshTimer);
  streamList.stop();
  streamPage.hide();
  setStatus("idle", "not connected");
  showLogin(message);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  $("token-input").value = "";
  begin();
});

$("forget-token").addEventListener("click", () => logout());

// --- HTTP read API ------------------------------------------------------------------------------------

async function api(path, init = {}) {
  const token = state.token;
  const response = await fetch(base + path, {
    ...init,
    headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` },
  });
  if (response.status === 401) {
    if (token === state.token) logout("The hub refused this token."); // not a call made with a token since forgotten
    throw new Error("unauthorized");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && (body.error || body.message)) || `HTTP ${response.status}`);
  return body;
}

// --- what the token may do -------------------------------------------------------------------------

async function refreshWhoami() {
  try {
    state.me = await api("/whoami");
  } catch (error) {
    if (error.message !== "unauthorized") $("whoami").textContent = `who: ${error.message}`;
    return;
  }
  if (state.me.user === null) { // the hub does not know this token (or it expired)
    state.me = null;
    logout("The hub refused this token.");
    return;
  }
  $("whoami").textContent = `${state.me.user} · ${state.me.scopes.join(" ")}`;
  renderSendPermission();
  renderStreams();
}

function topicMatches(pattern, topic) {
  // as the hub's Grant: a topic name, or a glob where only * is special
  if (pattern === "*") return true;
  if (!pattern.includes("*")) return pattern === topic;
  const parts = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`, "s").test(topic);
}

function allows(action, topic) {
  if (!state.me) return false;
  return state.me.scopes.some((scope) => {
    const colon = scope.indexOf(":");
    const kind = scope.slice(0, colon);
    return (kind === action || kind === "admin") && topicMatches(scope.slice(colon + 1), topic);
  });
}

function renderSendPermission() {
  // The hub checks every call; this only saves a refused send and says why up front.
  const topic = $("send-topic").value.trim();
  const scopes = state.me ? state.me.scopes : [];
  let why = "";
  if (!state.me) {
    // not known yet: the hub decides
  } else if (topic && !allows("write", topic)) {
    why = `This token (${state.me.user}) lacks write:${topic}: sending is disabled.`;
  } else if (!scopes.some((s) => s.startsWith("write:") || s.startsWith("admin:"))) {
    why = `This token (${state.me.user}) can only read: sending needs a write scope.`;
  }
  $("send-button").disabled = why !== "";
  $("send-button").title = why;
  $("send-why").textContent = why;
  $("send-why").hidden = why === "";
}

$("send-topic").addEventListener("input", renderSendPermission);

async function refreshStreams() {
  try {
    const token = state.token; // a listing started before the token was forgotten ends quietly
    const topics = await api("/topics");
    const seen = new Set();
    const queue = topics.slice(0, MAX_TOPICS).map(({ topic }) => topic);
    const listTopics = async () => {
      for (let topic = queue.shift(); topic !== undefined && token === state.token; topic = queue.shift()) {
        const streams = await api(`/topics/${encodeURIComponent(topic)}/streams`);
        if (token !== state.token) return;
        for (const info of streams) {
          const k = key(info.topic, info.streamId);
          const known = state.streams.get(k);
          // live counts may be ahead of a listing read a moment ago
          if (known && (known.lastActivity || 0) > (info.lastActivity || 0)) Object.assign(info, { events: known.events, parameterRows: known.parameterRows, lastActivity: known.lastActivity });
          state.streams.set(k, info);
          seen.add(k);
        }
      }
    };
    await Promise.all(Array.from({ length: LIST_CONCURRENCY }, listTopics));
    if (token !== state.token) return;
    for (const k of [...state.streams.keys()]) if (!seen.has(k)) state.streams.delete(k);
    const more = topics.length > MAX_TOPICS ? ` (the first ${MAX_TOPICS} of ${topics.length} topics)` : "";
    $("streams-updated").textContent = `listed ${new Date().toLocaleTimeString()}${more}`;
    renderStreams();
  } catch (error) {
    if (error.message !== "unauthorized") $("streams-updated").textContent = `listing failed: ${error.message}`;
  }
}

// --- the Reader hub ------------------------------------------------------------------------------------

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

async function connectReader() {
  const reader = new HubConnection(`${base}/reader`, { accessToken: () => state.token });
  reader.on("EventDataReceived", onEvent);
  reader.on("ActiveStreamsChanged", onStreamChanged);
  reader.onclose((error) => {
    if (state.reader !== reader) return; // replaced, or logged out
    state.reader = null;
    setStatus("down", error ? `disconnected: ${error.message}` : "disconnected");
    retry();
  });
  setStatus("idle", "connecting…");
  try {
    await reader.start();
  } catch (error) {
    if (error.status === 401) {
      logout("The hub refused this token.");
      return;
    }
    setStatus("down", `cannot connect: ${error.message}`);
    retry();
    return;
  }
  state.reader = reader;
  state.retries = 0;
  setStatus("live", "live");
  for (const info of await reader.invoke("SubscribeToActiveStreams", "*")) {
    state.streams.set(key(info.topic, info.streamId), info);
  }
  renderStreams();
  if (state.chosen) await subscribeTail(state.chosen);
}

function retry() {
  if (!state.token) return;
  const delay = RETRY_MS[Math.min(state.retries++, RETRY_MS.length - 1)];
  setTimeout(() => state.token && !state.reader && connectReader(), delay);
}

function onStreamChanged(info, action) {
  // Remove = the stream was closed: it stays listed, as closed, until the next listing.
  state.streams.set(key(info.topic, info.streamId), info);
  if (action === "Remove") info.status = "closed";
  renderStreams();
}

function onEvent(event) {
  const row = state.streams.get(key(event.topicName, event.streamId));
  if (row) {
    row.events = (row.events || 0) + 1;
    row.lastActivity = Date.now() / 1000;
    renderSoon();
  }
  const chosen = state.chosen;
  if (!chosen || chosen.topic !== event.topicName || chosen.stream !== event.streamId) return;
  const tail = $("tail");
  const item = document.createElement("li");
  item.className = "fresh";
  item.dataset.id = event.id;
  item.dataset.value = event.value ?? "";
  item.append(
    cell("when", formatTime(event.timestamp), `timestamp ${event.timestamp} ns`),
    cell("id", event.id, event.id),
    cell("value", event.value === null || event.value === undefined ? "(null)" : String(event.value)),
  );
  const tags = Object.entries(event.tags || {});
  if (tags.length) item.append(cell("tags", tags.map(([k, v]) => `${k}=${v}`).join("  ")));
  tail.prepend(item);
  while (tail.children.length > MAX_TAIL) tail.lastElementChild.remove();
  state.tailCount += 1;
  $("tail-empty").hidden = true;
}

async function subscribeTail(stream) {
  const reader = state.reader;
  if (!reader) return;
  $("tail").dataset.subscribed = "";
  await reader.invoke("SubscribeToEvent", stream.topic, stream.stream, "*");
  $("tail").dataset.subscribed = `${stream.topic}/${stream.stream}`; // the live tail is on from here
}

async function choose(topic, stream) {
  const previous = state.chosen;
  if (previous && previous.topic === topic && previous.stream === stream && $("tail").dataset.subscribed) return;
  state.chosen = { topic, stream };
  sessionStorage.setItem(CHOSEN_KEY, JSON.stringify(state.chosen));
  $("tail").replaceChildren();
  $("tail-empty").hidden = false;
  $("tail-title").textContent = `${topic} / ${stream}`;
  $("send-topic").value = topic;
  $("send-stream").value = stream;
  renderSendPermission();
  renderStreams();
  window.location.hash = `#stream=${encodeURIComponent(topic)}/${encodeURIComponent(stream)}`;
  streamPage.show(topic, stream);
  if (state.reader && previous) {
    await state.reader.invoke("UnsubscribeFromStream", previous.topic, previous.stream).catch(() => {});
  }
  await subscribeTail(state.chosen).catch((error) => {
    $("tail-title").textContent = `${topic} / ${stream}: ${error.message}`;
  });
}

// --- the Writer hub: a test event ----------------------------------------------------------------------

async function writer() {
  if (state.writer && state.writer.state === "Connected") return state.writer;
  const conn = new HubConnection(`${base}/hub`, { accessToken: () => state.token });
  conn.onclose(() => {
    if (state.writer === conn) state.writer = null;
  });
  await conn.start();
  state.writer = conn;
  return conn;
}

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if ($("send-button").disabled) return; // the reason is shown next to the form
  const result = $("send-result");
  const topic = $("send-topic").value.trim();
  const stream = $("send-stream").value.trim();
  const testEvent = {
    id: $("send-id").value.trim() || "test",
    timestamp: Date.now() * 1e6, // nanoseconds (a whole number well inside a double's exact range of ms)
    value: $("send-value").value,
    tags: { source: "console" },
  };
  result.className = "";
  result.textContent = "sending…";
  try {
    await (await writer()).invoke("SendEventData", topic, stream, [testEvent]);
    result.className = "ok";
    result.textContent = `stored ${testEvent.id} at ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    result.className = "bad";
    result.textContent = error.message;
    if (error.status === 401) logout("The hub refused this token.");
  }
});

$("tail-button").addEventListener("click", () => {
  const topic = $("send-topic").value.trim();
  const stream = $("send-stream").value.trim();
  if (topic && stream) choose(topic, stream);
});

// --- rendering -----------------------------------------------------------------------------------------

function cell(className, text, title) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

function formatTime(nanoseconds) {
  const date = new Date(Number(nanoseconds) / 1e6);
  return Number.isNaN(date.getTime()) ? String(nanoseconds) : date.toISOString().slice(11, 23);
}

let renderPending = null;
function renderSoon() {
  // a burst of events re-draws the table once
  if (renderPending === null) renderPending = setTimeout(() => ((renderPending = null), renderStreams()), 250);
}

function renderStreams() {
  // the hub lists only what the token may read; never show more
  if (state.me) for (const [k, info] of state.streams) if (!allows("read", info.topic)) state.streams.delete(k);
  streamList.render(state.streams);
}

// --- start ---------------------------------------------------------------------------------------------

function begin() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("forget-token").hidden = false;
  if (state.chosen) {
    $("tail-title").textContent = `${state.chosen.topic} / ${state.chosen.stream}`;
    $("send-topic").value = state.chosen.topic;
    $("send-stream").value = state.chosen.stream;
    streamPage.show(state.chosen.topic, state.chosen.stream);
  }
  refreshWhoami();
  streamList.start();
  connectReader();
  refreshStreams();
  clearInterval(state.refreshTimer);
  state.refreshTimer = setInterval(() => (refreshWhoami(), refreshStreams()), REFRESH_MS); // scopes may be reloaded
}

setInterval(() => document.querySelectorAll("#streams td.ago").length && state.token && renderStreams(), 5000);

if (state.token) begin();
else showLogin();
