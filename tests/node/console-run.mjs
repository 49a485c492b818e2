// The live console page (hub/console, served by the hub at /) in headless Chromium (Debian's
// /usr/bin/chromium via playwright-core), as a person uses it: a wrong token is refused, the right
// one connects, a stream is chosen from the list, a test event is sent from the page's form and one
// over HTTP (fetch from Node), and both must appear in the live tail within `withinMs`.
// With `readOnly`, the token may only read: no wrong token first (its 401 would be a console
// error), the send control must be disabled with its reason shown, and an event sent over HTTP with
// `writeToken` must appear in the tail.
// Spec: {pageUrl, token, topic, stream, httpUrl, screenshot?, withinMs?, executablePath?, readOnly?, writeToken?}
// Result: {refusal, formMs, httpMs, tail: [{id, value}], row: [cells], consoleErrors, pageErrors}
//   readOnly: {whoami, send: {disabled, why, whyVisible, title}, topics, tail, row, consoleErrors, pageErrors}
import { chromium } from "playwright-core";

import { runDriver } from "./lib.mjs";

async function sendOverHttp(spec, id, token) {
  const response = await fetch(spec.httpUrl, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify([{ id, timestamp: Date.now() * 1e6, value: "sent with curl", tags: { via: "http" } }]),
  });
  if (!response.ok) throw new Error(`HTTP write failed: ${response.status} ${await response.text()}`);
}

runDriver(async (spec) => {
  const within = spec.withinMs ?? 2000;
  const browser = await chromium.launch({
    executablePath: spec.executablePath ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--no-first-run", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 640 } });
    const consoleErrors = [];
    const pageErrors = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    await page.goto(spec.pageUrl);

    let refusal = null;
    if (!spec.readOnly) {
      // a wrong token is refused, and the form asks again
      await page.fill("#token-input", "not-the-token");
      await page.click("#token-submit");
      await page.waitForFunction(() => document.querySelector("#token-error").textContent.length > 0);
      refusal = await page.textContent("#token-error");
    }

    await page.fill("#token-input", spec.token);
    await page.click("#token-submit");
    await page.waitForSelector('#status[data-state="live"]');
    const row = `#streams tr[data-topic="${spec.topic}"][data-stream="${spec.stream}"]`;
    await page.click(row);
    // the tail is subscribed (an empty list has no height: wait for the attribute, not visibility)
    await page.waitForSelector(`#tail[data-subscribed="${spec.topic}/${spec.stream}"]`, { state: "attached" });

    if (spec.readOnly) {
      await page.waitForFunction(() => document.querySelector("#whoami").textContent.length > 0);
      await page.waitForSelector("#send-button:disabled", { state: "attached" });
      await page.waitForFunction(() => document.querySelector("#streams-updated").textContent.startsWith("listed"));
      const send = {
        disabled: await page.isDisabled("#send-button"),
        why: await page.textContent("#send-why"),
        whyVisible: await page.isVisible("#send-why"),
        title: await page.getAttribute("#send-button", "title"),
      };
      await sendOverHttp(spec, "from-http", spec.writeToken);
      await page.waitForSelector('#tail li[data-id="from-http"]', { timeout: within });
      const topics = await page.$$eval("#streams tbody tr:not([hidden])", (rows) => [...new Set(rows.map((tr) => tr.dataset.topic))]);
      const tail = await page.$$eval("#tail li", (items) => items.map((li) => ({ id: li.dataset.id, value: li.dataset.value })));
      const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
      const whoami = await page.textContent("#whoami");
      await page.waitForTimeout(1300); // let the arrival highlight fade before the picture
      if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true });
      return { whoami, send, topics, tail, row: cells, consoleErrors, pageErrors };
    }

    // from the page's form (over the Writer hub)
    await page.fill("#send-id", "from-form");
    await page.fill("#send-value", "typed in the page");
    let started = Date.now();
    await page.click("#send-button");
    await page.waitForSelector('#tail li[data-id="from-form"]', { timeout: within });
    const formMs = Date.now() - started;

    // over HTTP, from outside the page
    started = Date.now();
    await sendOverHttp(spec, "from-http", spec.token);
    await page.waitForSelector('#tail li[data-id="from-http"]', { timeout: within });
    const httpMs = Date.now() - started;

    await page.waitForTimeout(1300); // let the arrival highlight fade before the picture
    const tail = await page.$$eval("#tail li", (items) => items.map((li) => ({ id: li.dataset.id, value: li.dataset.value })));
    const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true });
    return { refusal, formMs, httpMs, tail, row: cells, consoleErrors, pageErrors };
  } finally {
    await browser.close();
  }
});
