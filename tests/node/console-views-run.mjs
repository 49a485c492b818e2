// The console's views (hub/console: stream list, stream page, live chart, history, quarantine) in
// headless Chromium (Debian's /usr/bin/chromium via playwright-core), while the Python side feeds
// the hub with a test writer. Steps that need the Python side (stop the writer, restart the hub)
// are asked for with a line {"event": "...", ...} on stdout; the answer comes as one JSON line on
// stdin. Results are one line {"event": "result", "step", "result"} each, then {"event": "done"}.
// Spec: {pageUrl, adminToken, readToken, list: {count, topic, text, stream}, chart: {topic, stream,
//        params}, screenshots, timeoutMs}
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const spec = JSON.parse(process.argv[2]);
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
async function ask(event, extra = {}) {
  say({ event, ...extra });
  const { value } = await answers.next();
  return JSON.parse(value);
}
const result = (step, value) => say({ event: "result", step, result: value });
const shot = (page, name, selector) =>
  (selector ? page.locator(selector).screenshot({ path: `${spec.screenshots}/${name}.png` }) : page.screenshot({ path: `${spec.screenshots}/${name}.png`, fullPage: true }));

const watchdog = setTimeout(() => {
  say({ event: "timeout" });
  process.exit(3);
}, spec.timeoutMs ?? 240000);

const browser = await chromium.launch({
  executablePath: spec.executablePath ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
});
const errors = []; // [{phase, text}]
let phase = "start";
let page = null;

// Stops the writer, waits (up to 10 s) for the legend to show the last value it sent of each
// parameter, and returns the legend as shown then; the test compares the two.
async function legendOnceWriterStops() {
  const stopped = await ask("stop-writer");
  await page.waitForFunction((last) => Object.entries(last).every(([p, v]) => {
    const li = document.querySelector(`#chart-legend li[data-param="${p}"]`);
    return li && li.dataset.latest === String(v);
  }), stopped.last, { timeout: 10000 }).catch(() => {});
  return page.$$eval("#chart-legend li", (items) => Object.fromEntries(items.map((li) => [li.dataset.param, li.dataset.latest])));
}

try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1100 }, timezoneId: "UTC" });
  page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && errors.push({ phase, text: m.text(), url: m.location().url }));
  page.on("pageerror", (e) => errors.push({ phase, text: `page error: ${e}` }));
  page.on("requestfailed", (r) => phase === "restart" || errors.push({ phase, text: `request failed: ${r.url()} ${r.failure()?.errorText}` }));
  await page.goto(spec.pageUrl);
  await page.fill("#token-input", spec.adminToken);
  await page.click("#token-submit");
  await page.waitForSelector('#status[data-state="live"]');

  // --- the stream list: every stream listed, a few rows in the DOM, filtered down to one ----------
  phase = "list";
  const total = (n) => Number(document.querySelector("#streams-count").dataset.total || 0) >= n;
  await page.waitForFunction(total, spec.list.count, { timeout: 60000 });
  const listed = await page.textContent("#streams-count");
  const domRows = await page.$$eval("#streams tr", (rows) => rows.length);
  await page.evaluate(() => (document.querySelector("#stream-scroll").scrollTop = 30 * 5000)); // the middle of the list
  await page.waitForTimeout(200);
  const afterScroll = await page.$$eval("#streams tr:not([hidden])", (rows) => ({ count: rows.length, first: rows[0]?.dataset.stream }));
  await shot(page, "stream-list", "section.streams");
  await page.selectOption("#filter-topic", spec.list.topic);
  await page.fill("#filter-text", spec.list.text);
  await page.waitForFunction(() => document.querySelectorAll("#streams tr:not([hidden])").length === 1, null, { timeout: 10000 });
  const filtered = await page.$$eval("#streams tr:not([hidden])", (rows) => rows.map((tr) => ({ topic: tr.dataset.topic, stream: tr.dataset.stream })));
  const filteredCount = await page.textContent("#streams-count");
  await shot(page, "stream-list-filtered", "section.streams");
  result("list", { listed, domRows, afterScroll, filtered, filteredCount });

  // --- the chart's stream, chosen from the list ------------------------------------------------------
  phase = "chart";
  await page.selectOption("#filter-topic", spec.chart.topic);
  await page.fill("#filter-text", spec.chart.stream);
  await page.click(`#streams tr[data-stream="${spec.chart.stream}"]`);
  await page.waitForSelector('#chart[data-state="live"]', { timeout: 20000 });
  await page.waitForFunction((params) => params.every((p) => document.querySelector(`#chart-legend li[data-param="${p}"]`)), spec.chart.params, { timeout: 10000 });
  await page.waitForTimeout(2500); // a few redraws of live data
  const sparkline = await page.getAttribute(`#streams tr[data-stream="${spec.chart.stream}"]`, "data-last-minute");
  const pixels = await page.evaluate(() => {
    const { colours } = document.querySelector("#chart").snapshot();
    const canvas = document.querySelector("#chart canvas");
    const image = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const counts = {};
    for (const [id, hex] of Object.entries(colours)) {
      const [r, g, b] = rgb(hex);
      let n = 0;
      for (let i = 0; i < image.length; i += 4) {
        if (Math.abs(image[i] - r) <= 6 && Math.abs(image[i + 1] - g) <= 6 && Math.abs(image[i + 2] - b) <= 6 && image[i + 3] > 200) n++;
      }
      counts[id] = n;
    }
    return { colours, counts };
  });
  await page.waitForFunction(() => document.querySelectorAll("#parameter-definitions td").length > 1, null, { timeout: 10000 });
  await shot(page, "stream-page", "#stream-page .details");
  result("stream-page", await page.evaluate((token) => ({
    fields: Object.fromEntries([...document.querySelectorAll("#stream-props dd")].map((dd) => [dd.dataset.field, dd.textContent])),
    parameterDefinitions: [...document.querySelectorAll("#parameter-definitions tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    eventDefinitions: [...document.querySelectorAll("#event-definitions tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    curl: document.querySelector("#stream-curl").textContent,
    tokenInPage: document.documentElement.outerHTML.includes(token) || document.body.innerText.includes(token),
  }), spec.adminToken));
  await shot(page, "chart-live", "#stream-page .chart-panel");

  // the writer stops: the legend must show what it sent last, the chart every row from its start
  const legend = await legendOnceWriterStops();
  const liveSnapshot = await page.evaluate(() => document.querySelector("#chart").snapshot());
  result("chart-live", { sparkline, pixels, legend, snapshot: liveSnapshot, seam: await page.getAttribute("#chart", "data-seam"), note: await page.textContent("#chart-note") });

  // --- pause / resume ------------------------------------------------------------------------------
  await page.click("#chart-pause");
  const paused = await page.getAttribute("#chart", "data-paused");
  await page.click("#chart-pause");
  result("pause", { paused, resumed: await page.getAttribute("#chart", "data-paused") });

  // --- history of a past range -----------------------------------------------------------------------
  phase = "history";
  const loads = Number((await page.getAttribute("#chart", "data-loads")) || 0);
  const range = await ask("history-range");
  await page.fill("#history-from", range.from);
  await page.fill("#history-to", range.to);
  await page.click("#history-load");
  await page.waitForFunction((n) => Number(document.querySelector("#chart").dataset.loads) > n && document.querySelector("#chart").dataset.state === "range", loads, { timeout: 20000 });
  await page.waitForTimeout(300);
  const history = await page.evaluate(() => document.querySelector("#chart").snapshot());
  // hover over the first event mark of the range: its value shows
  let tip = null;
  const firstEvent = history.marks.find((m) => m.kind === "event");
  if (firstEvent) {
    const at = await page.evaluate((ts) => document.querySelector("#chart").positionOf(ts), firstEvent.ts);
    if (at) {
      await page.mouse.move(at.x, at.y + 40);
      await page.waitForSelector("#chart-tip:not([hidden])", { timeout: 3000 }).catch(() => {});
      tip = await page.evaluate(() => (document.querySelector("#chart-tip").hidden ? null : document.querySelector("#chart-tip").textContent));
    }
  }
  await shot(page, "chart-history", "#stream-page .chart-panel");
  result("history", { snapshot: history, tip, firstEvent });

  // --- the quarantine, newest first -------------------------------------------------------------------
  phase = "quarantine";
  await page.click("#quarantine-refresh");
  await page.waitForFunction(() => document.querySelectorAll("#quarantine tbody tr").length > 0, null, { timeout: 10000 });
  const quarantine = await page.$$eval("#quarantine tbody tr", (rows) => rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  await page.locator("#quarantine").scrollIntoViewIfNeeded();
  await shot(page, "quarantine", "#quarantine");
  result("quarantine", { rows: quarantine });

  // --- back to live, then a hub restart while the writer runs ------------------------------------------
  phase = "restart";
  await page.click("#history-live");
  await page.waitForSelector('#chart[data-state="live"]', { timeout: 20000 });
  await ask("restart-hub"); // the writer is running again; the hub restarts under it
  await page.waitForFunction(() => Number(document.querySelector("#chart").dataset.reconnects || 0) >= 1, null, { timeout: 30000 });
  await page.waitForSelector('#status[data-state="live"]', { timeout: 30000 });
  phase = "after-restart";
  await page.waitForTimeout(1500);
  const legendAfter = await legendOnceWriterStops();
  result("restart", { legend: legendAfter, snapshot: await page.evaluate(() => document.querySelector("#chart").snapshot()) });

  // --- a read-only token: sees everything, cannot send ---------------------------------------------------
  phase = "read-only";
  await page.click("#forget-token");
  await page.fill("#token-input", spec.readToken);
  await page.click("#token-submit");
  await page.waitForSelector('#status[data-state="live"]');
  await page.waitForFunction(total, spec.list.count, { timeout: 60000 });
  const readListed = await page.textContent("#streams-count");
  await page.waitForSelector('#chart[data-state="live"]', { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector("#chart").snapshot().ts.length > 0, null, { timeout: 10000 });
  const readChartRows = await page.evaluate(() => document.querySelector("#chart").snapshot().ts.length);
  await page.fill("#send-id", "from-read-only");
  await page.dispatchEvent("#send-topic", "input");
  const disabled = await page.isDisabled("#send-button");
  let sendResult = null;
  if (!disabled) {
    await page.click("#send-button");
    await page.waitForFunction(() => /refused|unauthorized|lacks|failed/i.test(document.querySelector("#send-result").textContent), null, { timeout: 10000 });
    sendResult = await page.textContent("#send-result");
  }
  await shot(page, "read-only");
  result("read-only", { listed: readListed, chartRows: readChartRows, disabled, title: await page.getAttribute("#send-button", "title"), sendResult });
  say({ event: "done", errors });
} catch (error) {
  let state = null;
  if (page) {
    await page.screenshot({ path: `${spec.screenshots}/failure.png`, fullPage: true }).catch(() => {});
    state = await page.evaluate(() => ({ chart: { ...document.querySelector("#chart").dataset }, note: document.querySelector("#chart-note").textContent, status: document.querySelector("#status").textContent })).catch(() => null);
  }
  say({ event: "failed", phase, state, error: String(error && error.stack || error), errors });
} finally {
  clearTimeout(watchdog);
  await browser.close();
  process.exit(0);
}
