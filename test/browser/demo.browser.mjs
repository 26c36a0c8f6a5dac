// The demo in a real browser: two users (two browser contexts) chat in a room and in a DM; one goes
// offline (context.setOffline), sends while offline, comes back, and every message it sent arrives
// exactly once, counted in the other user's page and in the REST history. Plus the phone-width layout.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect } from "../e2e/lib.mjs";
import { assertDemoBuilt, bubbles, connected, launch, openRoom, rest, say, signedIn, startServer } from "./lib.mjs";

const PORT = 8861;
let server;
let browser;

before(async () => {
  assertDemoBuilt();
  server = await startServer(PORT);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A small PNG drawn by the page itself (the server checks the type from the bytes). */
async function drawPng(page) {
  const dataUrl = await page.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 480;
    c.height = 300;
    const g = c.getContext("2d");
    const sky = g.createLinearGradient(0, 0, 0, 300);
    sky.addColorStop(0, "#312e81");
    sky.addColorStop(0.6, "#f97316");
    sky.addColorStop(1, "#fde68a");
    g.fillStyle = sky;
    g.fillRect(0, 0, 480, 300);
    g.fillStyle = "#fef3c7";
    g.beginPath();
    g.arc(240, 230, 60, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "#1e1b4b";
    g.beginPath();
    g.moveTo(0, 300);
    g.lineTo(120, 170);
    g.lineTo(220, 260);
    g.lineTo(330, 150);
    g.lineTo(480, 300);
    g.fill();
    return c.toDataURL("image/png");
  });
  return Buffer.from(dataUrl.split(",")[1], "base64");
}

/** Texts of a REST history page (newest first), as `user` sees it. */
async function historyTexts(user, path) {
  const res = await rest(server.url, user, `${path}?limit=100`, { name: "Bob" });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.messages.map((m) => m.text);
}

const count = (list, text) => list.filter((t) => t === text).length;

describe("demo chat in Chromium", () => {
  test("serves the demo at / while /api and /health stay with the Worker", async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /<title>edge-chat<\/title>/);
    const api = await fetch(`${server.url}/api/chat/rooms`);
    assert.equal(api.status, 401);
    assert.equal((await api.json()).error.code, "unauthorized");
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    const missing = await fetch(`${server.url}/no-such-file.txt`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, "not_found");
  });

  test("two users chat in a room and a DM; messages sent offline arrive exactly once", async () => {
    const alice = await signedIn(browser, server.url, "Alice");
    const bob = await signedIn(browser, server.url, "Bob");

    // A room: both join, see each other, typing shows, messages go both ways.
    await openRoom(alice.page, "general");
    await openRoom(bob.page, "general");
    await alice.page.getByTestId("room-sub").filter({ hasText: /^2 online/ }).waitFor();
    await say(alice.page, "Hi Bob, the room works");
    await bubbles(bob.page, "Hi Bob, the room works").waitFor();
    await bob.page.getByLabel("Message", { exact: true }).pressSequentially("Hi Al");
    await alice.page.getByTestId("typing").filter({ hasText: "Bob is typing…" }).waitFor();
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    await bubbles(alice.page, "Hi Al").waitFor();
    await alice.page.getByTestId("typing").filter({ hasText: /^$/ }).waitFor();

    // A DM, started from the room's member list; Bob (still in the room) gets an unread badge.
    await alice.page.getByRole("button", { name: "People" }).click();
    await alice.page.locator('.members [data-user="bob"]').click();
    await alice.page.getByTestId("chat-title").filter({ hasText: "Bob" }).waitFor();
    await say(alice.page, "psst, a DM");
    await bob.page.locator('[data-dm="alice"] [data-testid="unread"]').filter({ hasText: "1" }).waitFor();
    // Bob reads DMs in a second tab (same user, same context) and keeps the room open in the first.
    const bobDm = await bob.context.newPage();
    await bobDm.goto(server.url);
    await bobDm.locator('[data-dm="alice"]').click();
    await bubbles(bobDm, "psst, a DM").waitFor();
    await bob.page.locator('[data-dm="alice"] [data-testid="unread"]').waitFor({ state: "detached" });
    // Bob's read receipt reaches Alice: her message says it was seen.
    await alice.page.locator(".msg.mine", { hasText: "psst, a DM" }).getByTestId("seen").waitFor();
    await say(bobDm, "got it");
    await bubbles(alice.page, "got it").waitFor();

    // An image in the DM: uploaded with the SDK, shown to Bob from the authenticated media URL.
    await alice.page.getByTestId("file").setInputFiles({ name: "sunset.png", mimeType: "image/png", buffer: await drawPng(alice.page) });
    const img = bobDm.locator(".msg .media img");
    await img.waitFor();
    await bobDm.waitForFunction(() => {
      const i = document.querySelector(".msg .media img");
      return i instanceof HTMLImageElement && i.complete && i.naturalWidth === 480;
    });

    // Alice goes offline. Her sockets do not know yet: Chromium keeps them open, frames still go
    // out but nothing comes back, so the first message may be stored while its ack is lost. The
    // heartbeat notices, the demo says so, the next messages queue, and after the reconnect the
    // first one is sent again with its clientMsgId: stored once all the same.
    await alice.context.setOffline(true);
    await say(alice.page, "offline dm 1");
    await alice.page.locator('[data-testid="connection"]:not([data-state="open"])').waitFor({ state: "attached", timeout: 60_000 });
    await alice.page.locator(".banner").filter({ hasText: /offline|Reconnecting/ }).waitFor();
    await say(alice.page, "offline dm 2");
    await alice.page.evaluate(() => (location.hash = "#room/general")); // in-page: a navigation would fail offline
    await alice.page.getByTestId("chat-title").filter({ hasText: "General" }).waitFor();
    await say(alice.page, "offline room 1");
    assert.equal(await alice.page.locator(".msg.pending").count(), 1, "the room send waits, shown as pending");
    // Meanwhile Bob writes to Alice: she must get it after coming back, once.
    await say(bobDm, "while you were away");

    await alice.context.setOffline(false);
    await connected(alice.page);
    await say(alice.page, "back online"); // queued behind the offline sends: once Bob has it, they are all settled
    await bubbles(bob.page, "back online").waitFor();
    for (const text of ["offline room 1", "back online"]) {
      assert.equal(await bubbles(bob.page, text).count(), 1, `Bob's room shows "${text}" once`);
      assert.equal(await bubbles(alice.page, text).count(), 1, `Alice's room shows "${text}" once`);
    }
    assert.equal(await alice.page.locator(".msg.pending, .msg.failed").count(), 0);
    for (const text of ["offline dm 1", "offline dm 2"]) {
      await bubbles(bobDm, text).waitFor();
      assert.equal(await bubbles(bobDm, text).count(), 1, `Bob's DM shows "${text}" once`);
    }
    const dmOrder = await bobDm.locator(".messages .msg .text").allTextContents();
    assert.ok(dmOrder.indexOf("offline dm 1") < dmOrder.indexOf("offline dm 2"), `in order: ${dmOrder}`);

    // The server's own record, through REST: each stored once.
    const room = await historyTexts("bob", "/api/chat/rooms/general/messages");
    for (const text of ["Hi Bob, the room works", "Hi Al", "offline room 1", "back online"]) assert.equal(count(room, text), 1, `room history has "${text}" once`);
    const conversationId = await bobDm.evaluate(() => decodeURIComponent(location.hash.split("/")[1]));
    const dm = await historyTexts("bob", `/api/chat/dms/${conversationId}/messages`);
    for (const text of ["psst, a DM", "got it", "offline dm 1", "offline dm 2", "while you were away"]) {
      assert.equal(count(dm, text), 1, `DM history has "${text}" once`);
    }

    // What Bob wrote while Alice was offline reaches her once, after the inbox resumed.
    await alice.page.locator('[data-dm="bob"]').click();
    await bubbles(alice.page, "while you were away").waitFor();
    assert.equal(await bubbles(alice.page, "while you were away").count(), 1);
    assert.equal(await bubbles(alice.page, "offline dm 1").count(), 1);

    // Bob blocks Alice from the DM header: her next DM is refused (shown as not sent), never reaches him.
    await bobDm.getByTestId("block").filter({ hasText: "Block" }).click();
    await bobDm.getByTestId("block").filter({ hasText: "Unblock" }).waitFor();
    await say(alice.page, "can you hear me");
    await alice.page.locator('.msg.failed[data-code="blocked"]', { hasText: "can you hear me" }).filter({ hasText: "Not sent:" }).waitFor();
    await say(bobDm, "checking the block"); // Bob's own send is refused too: either side's block stops the pair
    await bobDm.locator('.msg.failed[data-code="blocked"]', { hasText: "checking the block" }).waitFor();
    assert.equal(await bubbles(bobDm, "can you hear me").count(), 0);
    assert.equal(count(await historyTexts("bob", `/api/chat/dms/${conversationId}/messages`), "can you hear me"), 0);
    await bobDm.getByTestId("block").filter({ hasText: "Unblock" }).click();
    await bobDm.getByTestId("block").filter({ hasText: "Block" }).waitFor();

    assert.deepEqual([...alice.errors, ...bob.errors], [], "no uncaught errors in the pages");
    await alice.context.close();
    await bob.context.close();
  });

  test("a room's history scrolls back page by page to its first message", async () => {
    // 95 messages from a plain WebSocket client, more than the room's first state (50) and one
    // history page (40) together, paced by the server's rate limit.
    const ws = await connect(server.url.replace(/^http/, "ws"), "erin", "/api/chat/rooms/astronomy/ws", { name: "Erin" });
    ws.send({ type: "join_room", id: "j" });
    await ws.waitFor((f) => f.type === "ack" && f.id === "j");
    const TOTAL = 95;
    for (let i = 1; i <= TOTAL; i++) {
      for (;;) {
        ws.send({ type: "send_room_message", id: `s${i}`, clientMsgId: `hist-${i}`, text: `history ${i}` });
        const reply = await ws.waitFor((f) => (f.type === "ack" || f.type === "error") && f.id === `s${i}`);
        ws.frames.length = 0; // the next waitFor must see only its own reply
        if (reply.type === "ack") break;
        assert.equal(reply.code, "rate_limited", JSON.stringify(reply));
        await new Promise((r) => setTimeout(r, reply.retryAfterMs));
      }
    }
    ws.close();

    const reader = await signedIn(browser, server.url, "Frank");
    await openRoom(reader.page, "astronomy");
    await bubbles(reader.page, `history ${TOTAL}`).waitFor();
    const edge = reader.page.locator(".history-edge");
    const shown = () => reader.page.locator(".messages .msg .text").count();
    assert.ok((await shown()) < TOTAL, "the first screen holds only the newest messages");
    // Scroll to the top until the list says it reached the beginning.
    while (!/beginning/.test((await edge.textContent()) ?? "")) {
      const before = await shown();
      await reader.page.locator(".messages").evaluate((el) => el.scrollTo(0, 0));
      await reader.page.waitForFunction(
        ([n]) => document.querySelectorAll(".messages .msg .text").length > n || /beginning/.test(document.querySelector(".history-edge")?.textContent ?? ""),
        [before],
      );
    }
    const texts = await reader.page.locator(".messages .msg .text").allTextContents();
    assert.deepEqual(texts, Array.from({ length: TOTAL }, (_, i) => `history ${i + 1}`), "every message once, in order");
    assert.deepEqual(reader.errors, []);
    await reader.context.close();
  });

  test("sharing a location asks for nearby rooms and records the location", async () => {
    const u = await signedIn(browser, server.url, "Gina", { geolocation: { latitude: 48.8566, longitude: 2.3522 }, permissions: ["geolocation"] });
    await connected(u.page);
    await u.page.getByRole("button", { name: /Share location/ }).click();
    const card = u.page.getByTestId("nearby");
    await card.and(u.page.locator('[data-status="below_threshold"]')).waitFor();
    await card.filter({ hasText: /suggestions need more than 20/ }).waitFor();
    // The page sent coordinates rounded to about 1 km; the server kept them as Gina's location.
    const res = await rest(server.url, "gina", "/api/chat/rooms/suggestions", { name: "Gina" });
    assert.equal(res.status, 200);
    assert.equal(res.body.location.source, "stored");
    assert.ok(Math.abs(res.body.location.lat - 48.86) < 0.01 && Math.abs(res.body.location.lon - 2.35) < 0.01, JSON.stringify(res.body.location));
    await u.context.close();
  });

  test("phone width (375 px): nothing overflows sideways, from sign-in to the member list", async () => {
    const phone = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
    const other = await signedIn(browser, server.url, "Dana");
    await openRoom(other.page, "random");
    await say(other.page, `A long link: https://example.com/${"averylongpathsegment".repeat(8)}?q=1`);

    const context = await browser.newContext(phone);
    const page = await context.newPage();
    /** Visible elements that stick out of the viewport on either side. */
    const overflow = () =>
      page.evaluate(() => {
        const out = [];
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth > width) out.push(`document ${document.documentElement.scrollWidth}px`);
        for (const el of document.querySelectorAll("body *")) {
          const r = el.getBoundingClientRect();
          if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
          const name = `${el.tagName.toLowerCase()}.${el.className}`;
          if (r.right > width + 0.5 || r.left < -0.5) out.push(`${name} ${Math.round(r.left)}..${Math.round(r.right)}`);
          // Content spilling out of a box that does not clip it (a long word in a bubble) is cut off
          // by the screen edge or overlaps its neighbours even when the box itself fits.
          else if (el.clientWidth > 0 && getComputedStyle(el).overflowX === "visible" && el.scrollWidth > el.clientWidth + 1)
            out.push(`${name} content ${el.scrollWidth}px in ${el.clientWidth}px`);
        }
        return out;
      });
    await page.goto(server.url);
    await page.getByLabel("Your name").waitFor();
    assert.deepEqual(await overflow(), [], "sign-in");
    await page.getByLabel("Your name").fill("Carol");
    await page.getByRole("button", { name: "Start chatting" }).click();
    await page.locator('[data-room="random"]').waitFor();
    assert.deepEqual(await overflow(), [], "room and DM list");
    await openRoom(page, "random");
    await page.locator(".msg .text", { hasText: "A long link" }).waitFor();
    await say(page, "Hello from a phone");
    await bubbles(page, "Hello from a phone").waitFor();
    assert.deepEqual(await overflow(), [], "a room with a long unbroken message");
    assert.equal(await page.locator(".sidebar").isVisible(), false, "one pane at a time");
    await page.getByRole("button", { name: "People" }).click();
    await page.locator(".members .member").first().waitFor();
    assert.deepEqual(await overflow(), [], "member list");
    await page.locator(".members .back").click();
    await page.locator(".main .back").click();
    await page.locator('[data-room="random"]').waitFor();
    assert.equal(await page.locator(".main").isVisible(), false, "back to the list");
    await context.close();
    await other.context.close();
  });
});
