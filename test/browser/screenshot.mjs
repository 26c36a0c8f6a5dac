#!/usr/bin/env node
// Takes the README's screenshots of the demo: docs/demo.png (Alice on a laptop, in a room with Bob
// and Carol) and docs/demo-phone.png (Bob on a phone). `npm run screenshot` (builds the demo first;
// starts its own wrangler dev on :8862 — run it under the heavy-work lock like the browser tests).
import path from "node:path";
import { ROOT } from "../../scripts/lib/wrangler.mjs";
import { bubbles, launch, openRoom, say, signedIn, startServer } from "./lib.mjs";

const server = await startServer(8862);
const browser = await launch();
try {
  const phone = { viewport: { width: 375, height: 720 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
  const alice = await signedIn(browser, server.url, "Alice Martin");
  const bob = await signedIn(browser, server.url, "Bob", phone);
  const carol = await signedIn(browser, server.url, "Carol Diaz");
  for (const u of [alice, bob, carol]) await openRoom(u.page, "durable-objects");

  const line = async (u, text) => {
    await say(u.page, text);
    await bubbles(alice.page, text).waitFor();
  };
  await line(alice, "Morning! Has anyone moved their rooms to the hibernation API yet?");
  await line(bob, "We did last week. The room objects sleep between messages now.");
  await line(carol, "Same here. Reconnects resume from the last seq, nothing lost.");
  await line(carol, "Even my phone on the train catches up without duplicates.");
  await line(alice, "Nice. Here's the view from the office roof tonight:");
  const png = await alice.page.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 640;
    c.height = 400;
    const g = c.getContext("2d");
    const sky = g.createLinearGradient(0, 0, 0, 400);
    sky.addColorStop(0, "#1e1b4b");
    sky.addColorStop(0.55, "#c2410c");
    sky.addColorStop(1, "#fcd34d");
    g.fillStyle = sky;
    g.fillRect(0, 0, 640, 400);
    g.fillStyle = "#fef3c7";
    g.beginPath();
    g.arc(330, 300, 70, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "#111827";
    let x = 0;
    for (const [w, h] of [[60, 150], [40, 210], [70, 120], [50, 260], [80, 170], [45, 230], [90, 140], [60, 200], [70, 110], [75, 190]]) {
      g.fillRect(x, 400 - h, w, h);
      x += w;
    }
    return c.toDataURL("image/png");
  });
  await alice.page.getByTestId("file").setInputFiles({ name: "roof.png", mimeType: "image/png", buffer: Buffer.from(png.split(",")[1], "base64") });
  await alice.page.locator(".msg .media img").waitFor();
  await bob.page.locator(".msg .media img").waitFor();
  await line(bob, "Wow 😍 what a sky");

  // A DM to Alice, so her sidebar shows an unread badge.
  const dana = await signedIn(browser, server.url, "Dana");
  await dana.page.locator('[data-testid="connection"][data-state="open"]').waitFor({ state: "attached" });
  await dana.page.getByRole("button", { name: "New direct message" }).click();
  await dana.page.getByLabel("Name of the person to message").fill("alice-martin");
  await dana.page.getByRole("button", { name: "Open" }).click();
  await dana.page.getByTestId("chat-title").filter({ hasText: "Alice Martin" }).waitFor();
  await say(dana.page, "Lunch at 1?");
  await say(dana.page, "The new place on the corner");
  await alice.page.locator('[data-dm="dana"] [data-testid="unread"]').filter({ hasText: "2" }).waitFor();

  await alice.page.getByRole("button", { name: "People" }).click();
  await alice.page.locator(".members .member").nth(2).waitFor();
  await carol.page.getByLabel("Message", { exact: true }).pressSequentially("Where is that");
  await alice.page.getByTestId("typing").filter({ hasText: "Carol Diaz is typing…" }).waitFor();
  await bob.page.getByTestId("typing").filter({ hasText: "Carol Diaz is typing…" }).waitFor();
  // Let images decode before the shots.
  for (const p of [alice.page, bob.page]) {
    await p.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
    await p.evaluate(() => document.querySelector(".messages")?.scrollTo(0, 1e9));
  }
  const out = (f) => path.join(ROOT, "docs", f);
  await alice.page.screenshot({ path: out("demo.png") });
  await bob.page.screenshot({ path: out("demo-phone.png") });
  console.log("wrote docs/demo.png and docs/demo-phone.png");
} finally {
  await browser.close();
  await server.stop();
}
