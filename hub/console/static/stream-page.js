// One stream's page: properties (name, location, metadata, parents, time of recording), status,
// counts, first/last timestamps, event and parameter definitions, and the curl commands that read it
// over HTTP (with $HUB_TOKEN in place of the token: the page never shows the token). The summary is
// re-read every few seconds while the page is shown (one stream, not a poll of every stream).
import { LiveChart } from "./chart.js";
import { getJson, pageUrl, streamPath } from "./http.js";
import { QuarantineView } from "./quarantine.js";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

function formatNs(ns) {
  if (ns === null || ns === undefined) return "–";
  const date = new Date(Number(ns) / 1e6);
  return Number.isNaN(date.getTime()) ? String(ns) : `${date.toISOString()} (${ns} ns)`;
}

// A URL inside single quotes in a shell: no quote can be in it.
const shellUrl = (path) => `'${pageUrl(path).replaceAll("'", "%27")}'`;

export class StreamPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.chart = new LiveChart(ctx);
    this.quarantine = new QuarantineView(ctx);
    this.current = null;
    this.timer = null;
  }

  async show(topic, stream) {
    $("stream-page").hidden = false;
    $("stream-title").textContent = `${topic} / ${stream}`;
    const same = this.current && this.current.topic === topic && this.current.stream === stream;
    this.current = { topic, stream };
    if (same) return;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.renderCurl(topic, stream);
    await Promise.all([this.refresh(), this.chart.open(topic, stream), this.quarantine.open(topic, stream)]);
  }

  hide() {
    clearInterval(this.timer);
    this.current = null;
    this.chart.close();
    $("stream-page").hidden = true;
  }

  async refresh() {
    const shown = this.current;
    if (!shown) return;
    const path = streamPath(shown.topic, shown.stream);
    try {
      const [info, events, parameters] = await Promise.all(
        [path, `${path}/events`, `${path}/parameters`].map((p) => getJson(this.ctx, p).then((r) => r.body)),
      );
      if (shown !== this.current) return;
      this.renderInfo(info);
      this.renderDefinitions($("event-definitions"), events, ["id", "name", "level", "description"]);
      this.renderDefinitions($("parameter-definitions"), parameters, ["id", "name", "unit", "minimumValue", "maximumValue", "description"]);
    } catch (error) {
      $("stream-props").replaceChildren(document.createTextNode(`could not be read: ${error.message}`));
    }
  }

  renderInfo(info) {
    const rows = [
      ["name", info.name ?? "–"],
      ["location", info.location ?? "–"],
      ["status", info.status],
      ["events", String(info.events)],
      ["parameter rows", String(info.parameterRows)],
      ["first timestamp", formatNs(info.firstTimestamp)],
      ["last timestamp", formatNs(info.lastTimestamp)],
      ["last activity", info.lastActivity ? new Date(info.lastActivity * 1000).toISOString() : "–"],
      ["time of recording", info.timeOfRecording ?? "–"],
      ["parents", (info.parents || []).join(", ") || "–"],
      ["metadata", Object.entries(info.metadata || {}).map(([k, v]) => `${k}=${v}`).join("  ") || "–"],
    ];
    $("stream-props").replaceChildren(...rows.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.field = name;
      return [dt, dd];
    }));
  }

  renderDefinitions(table, definitions, columns) {
    const head = document.createElement("tr");
    for (const column of columns) {
      const th = document.createElement("th");
      th.textContent = column;
      head.append(th);
    }
    const rows = definitions.map((definition) => {
      const tr = document.createElement("tr");
      for (const column of columns) {
        const td = document.createElement("td");
        const value = definition[column];
        td.textContent = value === null || value === undefined ? "" : String(value);
        tr.append(td);
      }
      return tr;
    });
    table.replaceChildren(head, ...(rows.length ? rows : [emptyRow(columns.length)]));
  }

  renderCurl(topic, stream) {
    const path = streamPath(topic, stream);
    const auth = '-H "Authorization: Bearer $HUB_TOKEN"';
    $("stream-curl").textContent = [
      "export HUB_TOKEN=...   # your token: the console never shows it",
      `curl ${auth} ${shellUrl(path)}`,
      `curl ${auth} ${shellUrl(`${path}/events/data?limit=100`)}`,
      `curl ${auth} ${shellUrl(`${path}/parameters/data?limit=100`)}`,
      `curl -i ${auth} ${shellUrl(`${path}/parameters/data?from=<ns>&to=<ns>&limit=1000`)}   # then &after=<X-Next-Cursor>`,
      `curl ${auth} ${shellUrl(`${path}/parameters`)}   # definitions`,
      `curl ${auth} ${shellUrl(`topics/${encodeURIComponent(topic)}/quarantine?order=desc&limit=20`)}`,
    ].join("\n");
  }
}

function emptyRow(span) {
  const tr = document.createElement("tr");
  const td = document.createElement("td");
  td.colSpan = span;
  td.className = "hint";
  td.textContent = "none defined";
  tr.append(td);
  return tr;
}
