// The stream list: thousands of streams (10,000 across 100 topics is the tested size), filtered by
// topic and text, sorted by last activity, virtualised: the table holds SLOTS rows whatever the
// count, and scrolling re-fills those rows. Each visible row has a sparkline (uPlot) of events plus
// parameter rows per second over the last minute, counted from the Reader hub's live deliveries of
// the visible streams only (subscribed as they scroll into view, unsubscribed as they leave).
import { LiveReader } from "./live.js";

const uPlot = window.uPlot;
const ROW_HEIGHT = 30; // px, fixed: the virtual scroll maps scrollTop to a row index with it
const VISIBLE_ROWS = 14;
const SLOTS = VISIBLE_ROWS + 2; // rows in the DOM, at most: the visible ones and one partial at each end
const SPARK_SECONDS = 60; // one bucket a second
const SUBSCRIBE_DELAY_MS = 300; // a fast scroll subscribes once, where it stops
const RENDER_DELAY_MS = 100; // a burst of changes (10,000 streams announced) sorts once

const $ = (id) => document.getElementById(id);
const key = (topic, stream) => `${topic}\u0000${stream}`;

function ago(seconds) {
  if (!seconds) return "";
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleString();
}

// Per-second counts of one stream over the last SPARK_SECONDS, in a ring.
class Activity {
  constructor() {
    this.counts = new Float64Array(SPARK_SECONDS);
    this.second = Math.floor(Date.now() / 1000);
  }

  advance(now) {
    const second = Math.floor(now / 1000);
    for (let s = this.second + 1; s <= Math.min(second, this.second + SPARK_SECONDS); s++) this.counts[s % SPARK_SECONDS] = 0;
    if (second > this.second) this.second = second;
  }

  add(n, now) {
    this.advance(now);
    this.counts[this.second % SPARK_SECONDS] += n;
  }

  series(now) {
    this.advance(now);
    const out = new Array(SPARK_SECONDS);
    for (let i = 0; i < SPARK_SECONDS; i++) out[i] = this.counts[(this.second - SPARK_SECONDS + 1 + i + SPARK_SECONDS * 2) % SPARK_SECONDS];
    return out;
  }
}

const SPARK_X = Array.from({ length: SPARK_SECONDS }, (_, i) => i);

function sparkline(target) {
  return new uPlot(
    {
      width: 96,
      height: 22,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false },
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: "#0b6bcb", fill: "rgba(11, 107, 203, 0.18)", width: 1, points: { show: false } }],
    },
    [SPARK_X, new Array(SPARK_SECONDS).fill(0)],
    target,
  );
}

export class StreamList {
  // ctx: {token(), refused()}; onChoose(topic, stream); chosen(): {topic, stream} or null
  constructor(ctx, { onChoose, chosen }) {
    this.onChoose = onChoose;
    this.chosen = chosen;
    this.streams = new Map();
    this.filtered = [];
    this.topics = "";
    this.activity = new Map(); // key -> Activity, only for subscribed (visible) streams
    this.subscribed = new Set(); // keys with live subscriptions
    this.renderTimer = null;
    this.subscribeTimer = null;
    this.scroll = $("stream-scroll");
    this.spacer = $("stream-spacer");
    this.table = $("streams");
    this.body = this.table.tBodies[0];
    this.slots = [];
    for (let i = 0; i < SLOTS; i++) this.slots.push(this.makeSlot());
    let framed = false; // one layout a frame, however many scroll events
    this.scroll.addEventListener("scroll", () => framed || ((framed = true), requestAnimationFrame(() => ((framed = false), this.layout()))), { passive: true });
    $("filter-topic").addEventListener("change", () => this.refilter());
    $("filter-text").addEventListener("input", () => this.refilter());
    this.body.addEventListener("click", (event) => {
      const tr = event.target.closest("tr");
      if (tr && tr.dataset.stream !== undefined) this.onChoose(tr.dataset.topic, tr.dataset.stream);
    });
    this.live = new LiveReader(ctx);
    this.live.on("EventDataReceived", (e) => this.count(e.topicName, e.streamId, 1, 0));
    this.live.on("ParameterDataReceived", (d) => this.count(d.topicName, d.streamId, 0, d.timestamps.length));
    setInterval(() => this.drawSparks(), 1000);
  }

  start() {
    this.live.start();
  }

  stop() {
    this.live.stop();
    this.subscribed.clear();
    this.activity.clear();
  }

  makeSlot() {
    const tr = document.createElement("tr");
    tr.hidden = true;
    const cells = ["", "", "", "", "num", "num", "ago", "spark"].map((className) => {
      const td = document.createElement("td");
      if (className) td.className = className;
      tr.append(td);
      return td;
    });
    this.body.append(tr);
    return { tr, cells, chart: sparkline(cells[7]), key: null };
  }

  // Called with the console's map of summaries whenever it changes: re-sorted at most every 100 ms.
  render(streams) {
    this.streams = streams;
    if (this.renderTimer === null) this.renderTimer = setTimeout(() => ((this.renderTimer = null), this.refilter()), RENDER_DELAY_MS);
  }

  refilter() {
    const topicFilter = $("filter-topic").value;
    const text = $("filter-text").value.trim().toLowerCase();
    const all = [...this.streams.values()];
    this.updateTopics(all);
    this.filtered = all
      .filter((info) => (!topicFilter || info.topic === topicFilter) && (!text || matches(info, text)))
      .sort((a, b) => (b.lastActivity || 0) - (a.lastActivity || 0));
    this.spacer.style.height = `${this.filtered.length * ROW_HEIGHT}px`;
    const count = this.filtered.length === all.length ? `${all.length.toLocaleString("en")} streams` : `${this.filtered.length.toLocaleString("en")} of ${all.length.toLocaleString("en")} streams`;
    $("streams-count").textContent = count;
    $("streams-count").dataset.total = String(all.length);
    $("streams-count").dataset.shown = String(this.filtered.length);
    $("no-streams").hidden = all.length > 0;
    this.layout();
  }

  updateTopics(all) {
    const topics = [...new Set(all.map((info) => info.topic))].sort();
    const joined = topics.join("\u0000");
    if (joined === this.topics) return;
    this.topics = joined;
    const select = $("filter-topic");
    const current = select.value;
    const options = [new Option(`all topics (${topics.length})`, "")];
    for (const topic of topics) options.push(new Option(topic, topic));
    select.replaceChildren(...options);
    select.value = topics.includes(current) ? current : "";
  }

  layout() {
    const first = Math.max(0, Math.min(Math.floor(this.scroll.scrollTop / ROW_HEIGHT), Math.max(0, this.filtered.length - VISIBLE_ROWS)));
    this.table.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const chosen = this.chosen();
    const now = Date.now();
    this.slots.forEach((slot, i) => {
      const info = this.filtered[first + i];
      slot.tr.hidden = !info;
      if (!info) {
        slot.key = null;
        return;
      }
      const k = key(info.topic, info.streamId);
      slot.key = k;
      slot.tr.dataset.topic = info.topic;
      slot.tr.dataset.stream = info.streamId;
      slot.tr.classList.toggle("chosen", !!chosen && chosen.topic === info.topic && chosen.stream === info.streamId);
      slot.tr.classList.toggle("closed", info.status === "closed");
      const texts = [info.topic, info.streamId, info.name ?? "", info.status, String(info.events ?? 0), String(info.parameterRows ?? 0), ago(info.lastActivity)];
      texts.forEach((text, c) => {
        if (slot.cells[c].textContent !== text) slot.cells[c].textContent = text;
      });
      slot.cells[1].title = info.streamId;
      const activity = this.activity.get(k);
      const series = activity ? activity.series(now) : new Array(SPARK_SECONDS).fill(0);
      slot.chart.setData([SPARK_X, series]);
      slot.tr.dataset.lastMinute = String(series.reduce((a, b) => a + b, 0)); // what the sparkline shows, summed
    });
    clearTimeout(this.subscribeTimer);
    this.subscribeTimer = setTimeout(() => this.resubscribe(), SUBSCRIBE_DELAY_MS);
  }

  // Subscribes the visible streams, unsubscribes those that left the view.
  resubscribe() {
    const wanted = new Map();
    for (const slot of this.slots) if (slot.key) wanted.set(slot.key, slot.key.split("\u0000"));
    for (const k of [...this.subscribed]) {
      if (wanted.has(k)) continue;
      const [topic, stream] = k.split("\u0000");
      this.subscribed.delete(k);
      this.activity.delete(k);
      this.live.unsubscribe([`e${k}`, `p${k}`], "UnsubscribeFromStream", topic, stream);
    }
    for (const [k, [topic, stream]] of wanted) {
      if (this.subscribed.has(k)) continue;
      this.subscribed.add(k);
      this.activity.set(k, new Activity());
      this.live.subscribe(`e${k}`, "SubscribeToEvent", topic, stream, "*").catch(() => {});
      this.live.subscribe(`p${k}`, "SubscribeToParameter", topic, stream, "*").catch(() => {});
    }
  }

  count(topic, stream, events, rows) {
    const k = key(topic, stream);
    const activity = this.activity.get(k);
    if (!activity) return; // left the view meanwhile
    activity.add(events + rows, Date.now());
    const info = this.streams.get(k);
    const chosen = this.chosen();
    // the chosen stream's event count is kept by the console's tail subscription
    if (info && !(chosen && chosen.topic === topic && chosen.stream === stream)) info.events = (info.events || 0) + events;
    if (info) {
      info.parameterRows = (info.parameterRows || 0) + rows;
      info.lastActivity = Date.now() / 1000;
    }
  }

  drawSparks() {
    if (!this.activity.size) return;
    this.render(this.streams); // counts and order changed
  }
}

function matches(info, text) {
  return [info.streamId, info.name, info.location, info.topic].some((v) => typeof v === "string" && v.toLowerCase().includes(text));
}
