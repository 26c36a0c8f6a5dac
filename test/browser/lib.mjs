// Browser test helpers: Debian's Chromium driven by playwright-core (Playwright's own browser
// download does not work here), against a throwaway `wrangler dev` serving the built demo.
import { chromium } from "playwright-core";
import { existsSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../../scripts/lib/wrangler.mjs";

export { startServer } from "../e2e/lib.mjs";

/** Debian's Chromium; CHROMIUM_PATH overrides it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Fails early, with what to do, when the demo bundle is missing (`npm run test:browser` builds it). */
export function assertDemoBuilt() {
  if (!existsSync(path.join(ROOT, "web/public/build/app.js"))) throw new Error("web/public/build/app.js is missing: run `npm run build:web`");
}

/** Launches headless Chromium with the flags this machine needs. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** A new context (its own storage: its own user) and page, signed in as `name` on the demo at `url`. */
export async function signedIn(browser, url, name, { viewport = { width: 1280, height: 800 }, ...options } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(url);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await page.getByTestId("me").filter({ hasText: name }).waitFor();
  return { context, page, errors };
}

/** Opens a room from the sidebar and waits until the room's socket is joined (its head counts who is online). */
export async function openRoom(page, roomId) {
  await page.locator(`[data-room="${roomId}"]`).click();
  await page.getByTestId("room-sub").filter({ hasText: /online/ }).waitFor();
  await connected(page);
}

/** Waits until the page's connection state (shown in the sidebar) is `state`. */
export async function connected(page, state = "open") {
  await page.locator(`[data-testid="connection"][data-state="${state}"]`).waitFor({ state: "attached" });
}

/** Types a message in the composer and sends it with Enter. */
export async function say(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The stored (acknowledged) message bubbles whose text is exactly `text`. */
export function bubbles(page, text) {
  return page.locator(".messages .msg.sent .text", { hasText: new RegExp(`^${escape(text)}$`) });
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A REST call as `userId` (display name `name`), with a token from the development token route. */
export async function rest(base, userId, path, { name = userId, ...init } = {}) {
  const minted = await fetch(`${base}/api/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId, name }),
  });
  if (!minted.ok) throw new Error(`dev token: ${minted.status} ${await minted.text()}`);
  const { token } = await minted.json();
  const res = await fetch(`${base}${path}`, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}
