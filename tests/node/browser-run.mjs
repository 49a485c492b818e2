// Runs the browser scenarios of tests/browser in ONE headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): opens the test page, calls window.runScenario(spec) for each scenario
// in order, takes a screenshot, and prints one JSON line per event on stdout:
//   {"event": "waiting-for-restart", "scenario": name}   the page waits for the hub to come back
//   {"event": "result", "scenario": name, "result": {...}}
//   {"event": "done", "screenshot": path}  (or {"crashed": "..."} as the last line)
// Spec: {pageUrl, scenarios: [spec for app.js], screenshot, executablePath?, timeoutMs?}
import { chromium } from "playwright-core";

import { errorText, readSpec } from "./lib.mjs";

function emit(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

async function main(spec) {
  const browser = await chromium.launch({
    executablePath: spec.executablePath ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 520 } });
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(errorText(error)));
    await page.exposeFunction("notifyTest", (value) => emit(value));
    await page.goto(spec.pageUrl);
    await page.waitForFunction(() => typeof window.runScenario === "function" && typeof window.signalR === "object");
    for (const scenario of spec.scenarios) {
      const result = await page.evaluate((s) => window.runScenario(s), scenario);
      emit({ event: "result", scenario: scenario.name, result });
    }
    if (spec.screenshot) {
      await page.screenshot({ path: spec.screenshot, fullPage: true });
    }
    emit({ event: "done", screenshot: spec.screenshot ?? null, pageErrors });
  } finally {
    await browser.close();
  }
}

const spec = readSpec();
const watchdog = setTimeout(() => {
  emit({ crashed: `browser-run watchdog: not done after ${spec.timeoutMs ?? 90000} ms` });
  process.exit(3);
}, spec.timeoutMs ?? 90000);
main(spec).then(
  () => {
    clearTimeout(watchdog);
    process.stdout.write("", () => process.exit(0));
  },
  (error) => {
    clearTimeout(watchdog);
    emit({ crashed: errorText(error), stack: error?.stack });
    process.exit(1);
  },
);
