// The console's chart in headless Chromium (bench/console_redraw.py starts the hub and its writer):
// the longest tasks on Chromium's performance timeline (PerformanceObserver "longtask": every task
// of 50 ms or more) while the chart redraws 50,000 points a series, live and forced.
// Spec: {pageUrl, token, topic, stream, liveSeconds, forcedRedraws, executablePath?}
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(pathToFileURL(path.join(here, "..", "tests", "node", "package.json")));
const { chromium } = require("playwright-core");

const spec = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: spec.executablePath ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${spec.pageUrl}#stream=${encodeURIComponent(spec.topic)}/${encodeURIComponent(spec.stream)}`);
  await page.fill("#token-input", spec.token);
  await page.click("#token-submit");
  await page.waitForSelector('#chart[data-state="live"]', { timeout: 60000 });
  // the 5-minute window reads every stored row (the writer's minute and more): the chart fills to its bound
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => ({ at: e.startTime, ms: e.duration })))).observe({ type: "longtask" });
  });
  const loadStart = await page.evaluate(() => performance.now());
  await page.selectOption("#chart-window", "300");
  await page.waitForFunction(() => document.querySelector("#chart").dataset.state === "live" && document.querySelector("#chart").snapshot().ts.length >= 45000, null, { timeout: 120000 });
  const loadEnd = await page.evaluate(() => performance.now());
  await page.waitForTimeout(1000);
  const liveStart = await page.evaluate(() => performance.now());
  await page.waitForTimeout(spec.liveSeconds * 1000);
  const liveEnd = await page.evaluate(() => performance.now());
  const held = await page.evaluate(() => ({ points: document.querySelector("#chart").snapshot().ts.length, dropped: document.querySelector("#chart").snapshot().dropped, series: Object.keys(document.querySelector("#chart").snapshot().colours).length }));
  await page.click("#chart-pause"); // forced redraws alone: no live redraw between them
  await page.waitForTimeout(500);
  const forced = [];
  for (let i = 0; i < spec.forcedRedraws; i++) {
    forced.push(await page.evaluate(async () => {
      const start = performance.now();
      document.querySelector("#chart").redraw();
      await new Promise((resolve) => setTimeout(resolve, 0)); // uPlot commits in a microtask of this task
      return performance.now() - start;
    }));
    await page.waitForTimeout(100);
  }
  const tasks = await page.evaluate(() => window.longTasks);
  const within = (a, b) => tasks.filter((t) => t.at >= a && t.at < b).map((t) => Math.round(t.ms));
  console.log(JSON.stringify({
    held,
    load: { ms: Math.round(loadEnd - loadStart), longTasksMs: within(loadStart, loadEnd) },
    live: { seconds: spec.liveSeconds, longTasksMs: within(liveStart, liveEnd) },
    forced: { redrawMs: forced.map((ms) => Math.round(ms * 10) / 10) },
    errors,
  }));
} finally {
  await browser.close();
}
