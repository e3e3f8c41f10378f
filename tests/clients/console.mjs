// Drives weft's web console in a real headless Chromium (Debian `chromium` driven by npm
// `playwright-core`): sign in, installations, live tail, an event's payload and logs, run a
// dead task again, charts, the dev mode switch, an application's failed delivery sent
// again, a phone-width screen, and a token of another organization.
//
// stdin: {"url", "token", "outsiderToken", "integrationToken", "integration", "installation", "deadTask",
//         "tunnelUrl", "screenshots"?: "<dir>"}
// stdout: what the browser saw, as JSON; the Rust test (tests/all/console.rs) asserts on it.

import { chromium } from "playwright-core";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));

const console_ = `${input.url}/console`;
const name = input.integration;
const seen = { cspViolations: [], pageErrors: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

/** A page that records CSP violations and script errors. */
async function newPage(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on("console", (message) => {
    const text = message.text();
    if (/Content Security Policy|CSP violation/i.test(text)) seen.cspViolations.push(text);
  });
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  return page;
}

async function shot(page, file) {
  if (input.screenshots) await page.screenshot({ path: `${input.screenshots}/${file}`, fullPage: false });
}

async function signIn(page, token) {
  await page.goto(console_);
  await page.fill("#token", token);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("h1:text('Integrations')");
}

try {
  const page = await newPage({ width: 1280, height: 860 });

  // Sign in: a wrong token is refused in place, the right one opens the integrations list.
  const shell = await page.goto(console_);
  seen.status = shell.status();
  seen.csp = shell.headers()["content-security-policy"];
  await page.fill("#token", "not-a-token");
  await page.click("#sign-in button[type=submit]");
  await page.waitForFunction(() => document.querySelector("[role=alert]")?.textContent.length > 0);
  seen.wrongTokenAlert = await page.textContent("[role=alert]");
  await page.fill("#token", input.token);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("h1:text('Integrations')");
  seen.identity = await page.textContent("#identity");
  seen.integrations = await page.locator("tbody tr td:first-child").allTextContents();
  await shot(page, "integrations.png");

  // One integration's installations.
  await page.click(`a:text-is('${name}')`);
  await page.waitForSelector("h2:text('Installations')");
  seen.installations = await page.locator("tbody tr td:first-child").allTextContents();

  // Events: filters, then the live tail shows a new event.
  await page.click("nav.tabs a:text('Events')");
  await page.waitForSelector("#live-state:text-is('live')");
  seen.eventsBefore = await page.locator("#event-rows tr").count();
  await page.selectOption("#f-status", "failed");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("status=failed")
    && document.querySelector("#f-status")?.value === "failed"
    && document.querySelectorAll("#event-rows tr").length > 0
    && document.querySelectorAll("#event-rows tr:not(.failed)").length === 0);
  await page.waitForSelector("#live-state:text-is('live')");
  seen.failedRows = await page.locator("#event-rows tr").count();
  seen.failedRowsHighlighted = await page.locator("#event-rows tr.failed").count();
  seen.failedKinds = await page.locator("#event-rows .kind").allTextContents();
  await shot(page, "events.png");
  await page.click("nav.tabs a:text('Events')");
  await page.waitForFunction(() => !location.hash.includes("status=")
    && document.querySelector("#f-status")?.value === ""
    && document.querySelectorAll("#event-rows tr:not(.failed)").length > 0);
  await page.waitForSelector("#live-state:text-is('live')");
  const rowsBefore = await page.locator("#event-rows tr").count();
  const queued = Date.now();
  const answer = await fetch(`${input.url}/v1/integrations/${name}/tasks`, {
    method: "POST",
    headers: { Authorization: `Bearer ${input.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ task: { live: "tail" } }),
  });
  seen.queueStatus = answer.status;
  await page.waitForFunction((n) => document.querySelectorAll("#event-rows tr").length > n, rowsBefore, { timeout: 5000 });
  seen.liveMs = Date.now() - queued;

  // The new event's payload and logs.
  await page.click("#event-rows tr:first-child a");
  await page.waitForSelector("#event-payload");
  seen.payload = await page.textContent("#event-payload");
  seen.logs = await page.locator("#event-logs li .log-message").allTextContents();
  await shot(page, "event.png");

  // A time range: the ten seconds ending half an hour ago (the test filled the log with one
  // event a second).
  await page.goto(`${console_}#/integrations/${name}/events`);
  await page.waitForSelector("#live-state:text-is('live')");
  const range = await page.evaluate(() => {
    const pad = (n) => String(n).padStart(2, "0");
    const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const to = new Date(Date.now() - 30 * 60 * 1000);
    return { from: local(new Date(to.getTime() - 10 * 1000)), to: local(to) };
  });
  await page.fill("#f-from", range.from);
  await page.fill("#f-to", range.to);
  await page.click("form.filters button[type=submit]");
  // The new view (not the form just filled in) has the live tail off for a past range.
  await page.waitForFunction(() => location.hash.includes("to=") && document.querySelector("#live")?.checked === false);
  await page.waitForSelector("#event-rows tr");
  seen.rangeRows = await page.locator("#event-rows tr").count();
  seen.rangeOlderLink = await page.locator("a[rel=next]").count();
  seen.rangeLive = await page.isChecked("#live");

  // The dead task runs again.
  await page.goto(`${console_}#/integrations/${name}/queue?status=dead`);
  await page.waitForSelector(`button[data-task='${input.deadTask}']`);
  await page.click(`button[data-task='${input.deadTask}']`);
  await page.waitForFunction(() => /queued again/.test(document.getElementById("status").textContent));
  seen.runAgainStatus = await page.textContent("#status");

  // Charts render with real data.
  await page.goto(`${console_}#/integrations/${name}/charts`);
  await page.waitForSelector("#charts svg rect");
  seen.chartBars = await page.locator("#charts svg rect").count();
  seen.chartSummary = await page.textContent("#charts-summary");
  await shot(page, "charts.png");

  // Versions: the guest ABI and snapshot publish reported, per version.
  await page.goto(`${console_}#/integrations/${name}/versions`);
  await page.waitForSelector("[aria-label=Versions] tbody tr");
  seen.versionCells = await page.locator("[aria-label=Versions] tbody tr:first-child td").allTextContents();

  // Dev mode: the switch turns it on and off again.
  await page.goto(`${console_}#/integrations/${name}/dev`);
  await page.waitForSelector("#dev-switch");
  await page.fill("#tunnel-url", input.tunnelUrl);
  await page.click("#dev-switch");
  await page.waitForSelector("#dev-switch[aria-checked=true]");
  seen.devOn = await page.textContent("#dev-state");
  await page.click("#dev-switch");
  await page.waitForSelector("#dev-switch[aria-checked=false]");
  seen.devOff = await page.textContent("#dev-state");

  // Applications: the webhook and its failed delivery, sent again.
  await page.goto(`${console_}#/applications`);
  await page.waitForSelector("h1:text('Applications')");
  seen.applications = await page.locator("tbody tr td:first-child").allTextContents();
  await page.click("tbody tr td:first-child a");
  await page.waitForSelector("h2:text('Deliveries')");
  seen.webhooks = await page.locator("[aria-label=Webhooks] tbody tr td:first-child").allTextContents();
  seen.deliveries = await page.locator("[aria-label=Deliveries] tbody tr td:nth-child(3)").allTextContents();
  await shot(page, "application.png");
  await page.click("button.redeliver");
  await page.waitForFunction(() => /queued again/.test(document.getElementById("status").textContent));
  seen.redeliverStatus = await page.textContent("#status");

  // Keyboard: after each navigation the focus is on the new page's heading, and the next
  // Tab stops reach the page's controls.
  await page.goto(`${console_}#/integrations`);
  await page.waitForSelector("h1:text('Integrations')");
  seen.focused = await page.evaluate(() => `${document.activeElement.tagName}:${document.activeElement.textContent}`);
  await page.keyboard.press("Tab");
  seen.nextTab = await page.evaluate(() => document.activeElement.id || document.activeElement.tagName);

  // Page weight and time of the events page, from a fresh load of the document.
  await page.goto(`${console_}#/integrations/${name}/events`);
  await page.reload();
  await page.waitForSelector("#event-rows tr");
  seen.eventsPageBytes = await page.evaluate(() =>
    performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
      .reduce((sum, entry) => sum + (entry.transferSize || entry.encodedBodySize || 0), 0));
  seen.eventsPageMs = await page.evaluate(() => Math.round(performance.now()));

  // Phone width: nothing overflows the screen sideways (tables scroll in their own box).
  const phone = await newPage({ width: 390, height: 844 });
  await signIn(phone, input.token);
  await phone.goto(`${console_}#/integrations/${name}/events`);
  await phone.waitForSelector("#event-rows tr");
  seen.phoneOverflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await shot(phone, "phone-events.png");

  // The integration's own token sees the integration itself.
  const own = await newPage({ width: 1280, height: 860 });
  await signIn(own, input.integrationToken);
  seen.integrationIdentity = await own.textContent("#identity");
  seen.integrationSees = await own.locator("tbody tr td:first-child").allTextContents();

  // A member of another organization sees nothing of this integration.
  const outsider = await newPage({ width: 1280, height: 860 });
  await signIn(outsider, input.outsiderToken);
  seen.outsiderIntegrations = await outsider.locator("tbody tr td:first-child").allTextContents();
  await outsider.goto(`${console_}#/integrations/${name}/events`);
  await outsider.waitForSelector("h1:text('Not available')");
  seen.outsiderAlert = await outsider.textContent("[role=alert]");
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen));
