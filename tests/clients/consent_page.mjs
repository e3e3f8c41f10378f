// Signs in and consents on weft's OAuth page in a real headless Chromium (Debian `chromium`
// driven by npm `playwright-core`).
//
// stdin: {"authorizeUrl": "…", "userToken": "…", "redirectPrefix": "<the client's redirect URI>"}
// stdout: what the browser saw, as JSON; the Rust test asserts on it.

import { chromium } from "playwright-core";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const seen = {};
try {
  const page = await browser.newPage();

  const shown = await page.goto(input.authorizeUrl);
  seen.status = shown.status();
  seen.frameOptions = shown.headers()["x-frame-options"];
  seen.title = await page.title();
  seen.appName = await page.textContent("#app-name");
  seen.scopes = await page.locator("#scopes li").allTextContents();

  await page.fill("#user_token", "not-a-token");
  const refused = await Promise.all([page.waitForNavigation(), page.click("#allow")]);
  seen.wrongTokenStatus = refused[0].status();
  seen.wrongTokenAlert = await page.textContent("[role=alert]");

  await page.fill("#user_token", input.userToken);
  await Promise.all([page.waitForURL(`${input.redirectPrefix}**`), page.click("#allow")]);
  seen.allowedUrl = page.url();

  await page.goto(input.authorizeUrl);
  await Promise.all([page.waitForURL(`${input.redirectPrefix}**`), page.click("#deny")]);
  seen.deniedUrl = page.url();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen));
