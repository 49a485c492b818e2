// The topic's quarantine, newest first (GET /topics/{t}/quarantine?order=desc), with each line's
// number, reason and text; "older" follows the cursor. Rows of the shown stream are marked.
import { enc, getJson } from "./http.js";

const PAGE = 50; // rows a page; the table holds at most MAX_ROWS, older pages replace nothing
const MAX_ROWS = 500; // past it "older" stops: the HTTP API reads further
const $ = (id) => document.getElementById(id);

export class QuarantineView {
  constructor(ctx) {
    this.ctx = ctx;
    this.topic = null;
    this.stream = null;
    this.next = null;
    $("quarantine-refresh").addEventListener("click", () => this.load());
    $("quarantine-older").addEventListener("click", () => this.load(this.next));
  }

  open(topic, stream) {
    this.topic = topic;
    this.stream = stream;
    return this.load();
  }

  async load(after = null) {
    const topic = this.topic;
    if (!topic) return;
    const body = $("quarantine").tBodies[0];
    try {
      const page = await getJson(this.ctx, `topics/${enc(topic)}/quarantine`, { order: "desc", limit: PAGE, after });
      if (topic !== this.topic) return;
      if (!after) body.replaceChildren();
      for (const row of page.body) body.append(this.row(row));
      while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
      this.next = body.rows.length < MAX_ROWS ? page.next : null;
      $("quarantine-older").hidden = !this.next;
      $("quarantine-empty").hidden = body.rows.length > 0;
      $("quarantine-title").textContent = `topic ${topic}, newest first`;
    } catch (error) {
      $("quarantine-title").textContent = `could not be read: ${error.message}`;
    }
  }

  row(row) {
    const tr = document.createElement("tr");
    tr.dataset.line = String(row.line);
    if (row.streamId === this.stream) tr.classList.add("this-stream");
    const received = new Date(row.receivedAt * 1000);
    for (const [text, className] of [
      [Number.isNaN(received.getTime()) ? "" : received.toISOString().slice(0, 19).replace("T", " "), ""],
      [row.streamId ?? "", ""],
      [String(row.line), "num"],
      [row.reason, "reason"],
      [row.raw, "raw"],
    ]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (className) td.className = className;
      tr.append(td);
    }
    return tr;
  }
}
