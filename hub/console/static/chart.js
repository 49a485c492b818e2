// The live chart of one stream (uPlot): the chosen numeric parameters against their own
// timestamps, events and string values as marks with their values on hover, a rolling window
// (30 s, 5 min, 1 h) or a fixed past range, pause/resume, a legend with each series' latest value.
// Data comes from the HTTP API (history, paged with the cursor) and then the Reader hub
// (SubscribeToParameter / SubscribeToEvent with "*"): the subscription is made first and its
// deliveries wait while the history is read, then the overlap is dropped (chart-data.js
// seamOverlap), so the seam has no point twice and none missing. After the hub restarts the
// connection comes back and the gap is read over HTTP the same way.
import { ChartData, MAX_POINTS, insertAt, parameterRows, seamOverlap } from "./chart-data.js";
import { getJson, streamPath } from "./http.js";
import { LiveReader } from "./live.js";

const uPlot = window.uPlot;
export const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
const EVENT_MARK = "#ff7f0e";
const STRING_MARK = "#57606a";
const PAGE = 10000; // rows a history request
const MAX_BUFFERED = 100_000; // live rows waiting for a history read; past it the seam is given up (said on the page)
const REDRAW_MS = 250; // redraws at most 4 times a second, whatever the rate of data
const HOVER_PX = 5;

const $ = (id) => document.getElementById(id);
const nowNs = () => BigInt(Date.now()) * 1000000n;

function formatTime(ns) {
  const date = new Date(Number(ns) / 1e6);
  return Number.isNaN(date.getTime()) ? String(ns) : date.toISOString().replace("T", " ").slice(0, 23);
}

function formatValue(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, "");
  return value === null || value === undefined ? "–" : String(value);
}

export class LiveChart {
  constructor(ctx) {
    this.ctx = ctx;
    this.data = new ChartData();
    this.stream = null;
    this.range = null; // {from: BigInt ns, to: BigInt ns | null (then live)}
    this.windowSeconds = 30;
    this.paused = false;
    this.buffer = null; // {params: [], events: []} while history is read
    this.generation = 0; // each load; a read of an older load is dropped
    this.colours = new Map(); // parameter id -> colour, in order of first sight
    this.hidden = new Set(); // parameter ids unticked
    this.shownIds = [];
    this.plot = null;
    this.drawTimer = null;
    this.note = "";
    this.live = new LiveReader(ctx);
    this.live.on("ParameterDataReceived", (d) => this.received(d, parameterRows(d), "params"));
    this.live.on("EventDataReceived", (e) => this.received(e, [{ ts: e.timestamp, id: e.id, value: e.value }], "events"));
    this.live.onState((state) => {
      if (state === "down" && this.range && this.range.to === null) this.buffer = { params: [], events: [] };
      this.status();
    });
    this.live.onReconnected(() => this.fillGap());
    $("chart-window").addEventListener("change", () => {
      this.windowSeconds = Number($("chart-window").value);
      if (this.range && this.range.to === null) this.loadWindow();
    });
    $("chart-pause").addEventListener("click", () => this.setPaused(!this.paused));
    $("history-load").addEventListener("click", () => this.loadChosenRange());
    $("history-live").addEventListener("click", () => this.loadWindow());
    $("chart-params").addEventListener("change", (event) => {
      const box = event.target;
      if (box.checked) this.hidden.delete(box.value);
      else this.hidden.add(box.value);
      this.rebuild();
    });
    window.addEventListener("resize", () => this.plot && this.plot.setSize(this.size()));
    // read-only, for tests and the curious: what the chart holds
    $("chart").snapshot = () => ({
      ts: [...this.data.ts],
      series: Object.fromEntries([...this.data.series].map(([id, values]) => [id, [...values]])),
      marks: this.data.marks.map(({ ts, kind, label, value }) => ({ ts, kind, label, value })),
      latest: Object.fromEntries(this.data.latest),
      dropped: this.data.dropped,
      colours: Object.fromEntries(this.shownIds.map((id) => [id, this.colours.get(id)])),
      range: this.range && { from: this.range.from.toString(), to: this.range.to === null ? null : this.range.to.toString() },
    });
    // one full redraw of what is held (bench/console_redraw.py measures it)
    $("chart").redraw = () => this.plot && this.plot.setData(this.data.aligned(this.shownIds), true);
    // where the plot draws timestamp `ts` (CSS px from the viewport's left), or null off the plot
    $("chart").positionOf = (ts) => {
      if (!this.plot) return null;
      const left = this.plot.valToPos(ts / 1e9, "x");
      const rect = this.plot.over.getBoundingClientRect();
      return left < 0 || left > rect.width ? null : { x: rect.left + left, y: rect.top + 4 };
    };
  }

  async open(topic, stream) {
    const previous = this.stream;
    this.stream = { topic, stream };
    this.colours.clear();
    this.hidden.clear();
    if (previous) await this.live.unsubscribe(["p", "e"], "UnsubscribeFromStream", previous.topic, previous.stream);
    this.live.start();
    await this.loadWindow();
  }

  close() {
    this.stream = null;
    this.generation++;
    this.live.stop();
  }

  // The rolling window, read from its start, unless the stream is so busy that the window holds far
  // more than the chart keeps: then from where about the newest MAX_POINTS rows begin (estimated from
  // the stream's row count and timestamps), so a 1-hour window of 1,000 rows/s does not read 3.6
  // million rows to keep 50,000. The page says so.
  async loadWindow() {
    const windowFrom = nowNs() - BigInt(this.windowSeconds) * 1000000000n;
    let from = windowFrom;
    let estimate = null;
    try {
      const { body: info } = await getJson(this.ctx, streamPath(this.stream.topic, this.stream.stream));
      const { parameterRows: rows, firstTimestamp: first, lastTimestamp: last } = info;
      if (rows > MAX_POINTS && first !== null && last > first) {
        const nsPerRow = (last - first) / rows; // the stream's average: its real rate is at least this
        const newest = BigInt(Math.round(last)) - BigInt(Math.ceil(nsPerRow * MAX_POINTS * 1.2));
        if (newest > windowFrom) {
          from = newest;
          estimate = Math.round(Number(nowNs() - windowFrom) / nsPerRow);
        }
      }
    } catch (error) {
      // the read of the window itself will say what is wrong
    }
    await this.load(from, null);
    if (estimate !== null) this.say(`this window holds about ${estimate.toLocaleString("en")} rows: only the newest ~${MAX_POINTS.toLocaleString("en")} were read`);
  }

  loadChosenRange() {
    const from = $("history-from").value;
    const to = $("history-to").value;
    if (!from) return this.say("Choose when the range starts.");
    const ns = (text) => BigInt(Date.parse(`${text}Z`)) * 1000000n; // the inputs are UTC
    this.load(ns(from), to ? ns(to) : null);
  }

  // Reads [from, to) over HTTP; with to = null the chart then continues live from the seam.
  async load(from, to) {
    if (!this.stream) return;
    const generation = ++this.generation;
    const { topic, stream } = this.stream;
    this.range = { from, to };
    this.data.clear();
    this.note = "";
    $("chart").dataset.state = "loading";
    if (to === null) {
      this.buffer = { params: [], events: [] };
      await this.live.ready();
      await Promise.all([
        this.live.subscribe("p", "SubscribeToParameter", topic, stream, "*"),
        this.live.subscribe("e", "SubscribeToEvent", topic, stream, "*"),
      ]);
    } else {
      this.buffer = null;
      await this.live.unsubscribe(["p", "e"], "UnsubscribeFromStream", topic, stream);
    }
    try {
      const [params, events] = await this.history(from, to, generation);
      if (generation !== this.generation) return;
      if (to === null) this.joinSeam(params, events, Number(from));
    } catch (error) {
      if (generation === this.generation) this.say(`history failed: ${error.message}`);
    }
    if (generation !== this.generation) return;
    $("chart").dataset.state = to === null ? "live" : "range";
    $("chart").dataset.loads = String(Number($("chart").dataset.loads || 0) + 1);
    this.draw();
  }

  // Reads [from, to) page by page into the chart (whose bounds apply as it goes: a long range is
  // never held whole); returns the last MAX_BUFFERED rows and events read, what a seam may overlap.
  // Stops when another load began.
  async history(from, to, generation) {
    const path = streamPath(this.stream.topic, this.stream.stream);
    const range = { from: from.toString(), to: to === null ? null : to.toString(), limit: PAGE };
    const tails = { params: [], events: [] };
    const keep = (tail, items) => {
      tail.push(...items);
      if (tail.length > MAX_BUFFERED) tail.splice(0, tail.length - MAX_BUFFERED);
    };
    const read = async (what, add) => {
      let after = null;
      do {
        const { body, next } = await getJson(this.ctx, `${path}/${what}/data`, { ...range, after });
        if (generation !== this.generation) return;
        add(body);
        after = next;
      } while (after);
    };
    await Promise.all([
      read("parameters", (body) => {
        const rows = parameterRows(body);
        this.data.addRows(rows);
        keep(tails.params, rows);
      }),
      read("events", (body) => {
        const events = body.map((e) => ({ ts: e.timestamp, id: e.id, value: e.value }));
        this.data.addEvents(events);
        keep(tails.events, events);
      }),
    ]);
    return [tails.params, tails.events];
  }

  // Live rows that waited during the read: the ones the read already returned are dropped.
  joinSeam(historyParams, historyEvents, from) {
    const buffer = this.buffer;
    this.buffer = null;
    if (!buffer) return;
    if (buffer.lost) this.say(`more than ${MAX_BUFFERED.toLocaleString("en")} live rows arrived during the read: some may be missing`);
    const params = buffer.params.filter((row) => row.ts >= from);
    const events = buffer.events.filter((row) => row.ts >= from);
    const overlap = seamOverlap(historyParams, params);
    this.data.addRows(params.slice(overlap));
    this.data.addEvents(events.slice(seamOverlap(historyEvents, events)));
    $("chart").dataset.seam = String(overlap);
  }

  // After a reconnect: what was written while the connection was down, from the HTTP API.
  async fillGap() {
    if (!this.range || this.range.to !== null || !this.stream) return;
    const generation = this.generation;
    const after = this.data.maxTs === null ? this.range.from : BigInt(this.data.maxTs) + 1n;
    try {
      const [params, events] = await this.history(after, null, generation);
      if (generation !== this.generation) return;
      this.joinSeam(params, events, Number(after));
      $("chart").dataset.reconnects = String(Number($("chart").dataset.reconnects || 0) + 1);
    } catch (error) {
      this.say(`after reconnecting, the gap could not be read: ${error.message}`);
      this.buffer = null;
    }
    this.schedule();
  }

  received(message, rows, kind) {
    if (!this.stream || message.topicName !== this.stream.topic || message.streamId !== this.stream.stream) return;
    if (this.range && this.range.to !== null) return; // a fixed range shows stored data only
    if (this.buffer) {
      const waiting = this.buffer[kind];
      waiting.push(...rows);
      if (waiting.length > MAX_BUFFERED) ((this.buffer.lost = true), waiting.splice(0, waiting.length - MAX_BUFFERED));
      return;
    }
    if (kind === "params") this.data.addRows(rows);
    else this.data.addEvents(rows);
    this.schedule();
  }

  setPaused(paused) {
    this.paused = paused;
    $("chart-pause").textContent = paused ? "Resume" : "Pause";
    $("chart").dataset.paused = paused ? "true" : "false";
    if (!paused) this.draw();
    this.status();
  }

  schedule() {
    if (this.paused || this.drawTimer !== null) return;
    this.drawTimer = setTimeout(() => ((this.drawTimer = null), this.draw()), REDRAW_MS);
  }

  say(text) {
    this.note = text;
    this.status();
  }

  numericIds() {
    const ids = [...this.data.series.keys()].sort();
    for (const id of ids) if (!this.colours.has(id)) this.colours.set(id, COLOURS[this.colours.size % COLOURS.length]);
    return ids;
  }

  size() {
    return { width: Math.max(300, $("chart").clientWidth), height: 280 };
  }

  // A new uPlot when the shown series change; otherwise setData.
  rebuild() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.draw();
  }

  draw() {
    if (this.paused) return;
    const ids = this.numericIds();
    this.renderChoices(ids);
    const shown = ids.filter((id) => !this.hidden.has(id));
    if (!this.plot || shown.join("\u0000") !== this.shownIds.join("\u0000")) {
      if (this.plot) this.plot.destroy();
      this.shownIds = shown;
      this.plot = new uPlot(this.options(shown), this.data.aligned(shown), $("chart"));
    } else {
      this.plot.setData(this.data.aligned(shown), false);
    }
    const [min, max] = this.xRange();
    if (min !== null) this.plot.setScale("x", { min, max });
    this.renderLegend(shown);
    this.status();
  }

  xRange() {
    if (!this.range) return [null, null];
    if (this.range.to !== null) return [Number(this.range.from) / 1e9, Number(this.range.to) / 1e9];
    const latest = this.data.maxTs === null ? Date.now() / 1000 : this.data.maxTs / 1e9;
    return [latest - this.windowSeconds, latest];
  }

  options(ids) {
    return {
      ...this.size(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true } },
      // each parameter on its own y scale (km/h and rpm differ by 100x); its axis in its colour
      series: [{}, ...ids.map((id) => ({ label: id, scale: id, stroke: this.colours.get(id), width: 2, spanGaps: true, points: { show: false } }))],
      axes: [{}, ...ids.map((id, i) => ({ scale: id, side: i % 2 ? 1 : 3, stroke: this.colours.get(id), grid: { show: i === 0 }, size: 56 }))],
      hooks: { draw: [(u) => this.drawMarks(u)], setCursor: [(u) => this.hover(u)] },
    };
  }

  visibleMarks(u) {
    const { min, max } = u.scales.x;
    const marks = this.data.marks;
    return marks.slice(insertAt(marks, min - 1e-9, (m) => m.x), insertAt(marks, max, (m) => m.x));
  }

  drawMarks(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    ctx.save();
    for (const mark of this.visibleMarks(u).slice(-2000)) {
      const x = Math.round(u.valToPos(mark.x, "x", true));
      ctx.fillStyle = mark.kind === "event" ? EVENT_MARK : STRING_MARK;
      if (mark.kind === "event") {
        ctx.beginPath(); // a triangle at the top
        ctx.moveTo(x - 4, top);
        ctx.lineTo(x + 4, top);
        ctx.lineTo(x, top + 7);
        ctx.fill();
      } else {
        ctx.fillRect(x - 1, top + height - 8, 2, 8); // a tick at the bottom
      }
    }
    ctx.restore();
  }

  hover(u) {
    const tip = $("chart-tip");
    const left = u.cursor.left;
    if (left === null || left === undefined || left < 0) return void (tip.hidden = true);
    const near = this.visibleMarks(u).filter((m) => Math.abs(u.valToPos(m.x, "x") - left) <= HOVER_PX).slice(-8);
    if (!near.length) return void (tip.hidden = true);
    tip.replaceChildren(...near.map((m) => {
      const line = document.createElement("div");
      line.textContent = `${m.kind === "event" ? "event" : "value"} ${m.label}: ${formatValue(m.value)} at ${formatTime(m.ts)}`;
      return line;
    }));
    tip.hidden = false;
    tip.style.left = `${left + u.bbox.left / devicePixelRatio + 12}px`;
    tip.style.top = `${(u.cursor.top ?? 0) + u.bbox.top / devicePixelRatio + 8}px`;
  }

  renderChoices(ids) {
    const box = $("chart-params");
    const have = [...box.querySelectorAll("input")].map((input) => input.value).join("\u0000");
    if (have === ids.join("\u0000")) return;
    box.replaceChildren(...ids.map((id) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = id;
      input.checked = !this.hidden.has(id);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = this.colours.get(id);
      label.append(input, swatch, document.createTextNode(id));
      return label;
    }));
    $("chart-empty").hidden = ids.length > 0;
  }

  renderLegend(ids) {
    const items = ids.map((id) => {
      const li = document.createElement("li");
      const latest = this.data.latest.get(id);
      li.dataset.param = id;
      li.dataset.latest = latest === undefined ? "" : String(latest);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = this.colours.get(id);
      const value = document.createElement("b");
      value.textContent = formatValue(latest);
      li.append(swatch, document.createTextNode(`${id} `), value);
      return li;
    });
    for (const [id, value] of this.data.latest) {
      if (this.data.series.has(id)) continue; // a string parameter: its latest value, no line
      const li = document.createElement("li");
      li.className = "string";
      li.dataset.param = id;
      li.dataset.latest = String(value);
      li.textContent = `${id} = ${value}`;
      items.push(li);
    }
    $("chart-legend").replaceChildren(...items);
  }

  status() {
    const held = this.data.x.length;
    const parts = [];
    if (this.range) {
      parts.push(this.range.to === null ? `live, last ${$("chart-window").selectedOptions[0].textContent}` : `${formatTime(this.range.from)} – ${formatTime(this.range.to)} (stored)`);
    }
    if (this.paused) parts.push("paused");
    if (this.range && this.range.to === null && !this.live.connected) parts.push("reconnecting…");
    parts.push(`${held.toLocaleString("en")} points a series held; at most ${MAX_POINTS.toLocaleString("en")} are kept, older ones are dropped`);
    if (this.data.dropped) parts.push(`${this.data.dropped.toLocaleString("en")} dropped so far`);
    if (this.note) parts.push(this.note);
    $("chart-note").textContent = parts.join(" · ");
  }
}
