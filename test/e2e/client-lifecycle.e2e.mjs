// The SDK's message lifecycle (the built @edge-chat/client) against a real `wrangler dev`: edits,
// deletions and reactions between two clients, typed refusals, and resume of changes: a client cut
// off (a loopback TCP proxy that drops its connections and refuses new ones) while a message it holds
// is edited and reacted to learns of both once it is back, through `join_room { since, sinceRev }`
// and `sync { sinceRev }`, each change once.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { api, startServer, token } from "./lib.mjs";

const SERVER_PORT = 8931;
const PROXY_PORT = 8932;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function ensureClientBuilt() {
  const dist = path.join(ROOT, "client/dist/index.js");
  const src = path.join(ROOT, "client/src");
  const newest = Math.max(...readdirSync(src).map((f) => statSync(path.join(src, f)).mtimeMs));
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest) {
    execFileSync(process.execPath, [path.join(ROOT, "client/build.mjs")], { stdio: "inherit" });
  }
}

/** A loopback TCP proxy to the server; `cut()` drops every connection and refuses new ones until `heal()`. */
function proxy(targetPort) {
  const pairs = new Set();
  let refusing = false;
  const srv = createServer((down) => {
    if (refusing) return down.destroy();
    const up = tcpConnect(targetPort, "127.0.0.1");
    const pair = [down, up];
    pairs.add(pair);
    const end = () => {
      down.destroy();
      up.destroy();
      pairs.delete(pair);
    };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    down.pipe(up);
    up.pipe(down);
  });
  return {
    listen: () => new Promise((r) => srv.listen(PROXY_PORT, "127.0.0.1", r)),
    url: `http://127.0.0.1:${PROXY_PORT}`,
    cut() {
      refusing = true;
      for (const [d, u] of [...pairs]) {
        d.destroy();
        u.destroy();
      }
      pairs.clear();
    },
    heal() {
      refusing = false;
    },
    close: () => new Promise((r) => srv.close(r)),
  };
}

let server;
let px;
let ChatClient;
const clients = [];

before(async () => {
  ensureClientBuilt();
  ({ ChatClient } = await import("@edge-chat/client"));
  server = await startServer(SERVER_PORT);
  px = proxy(SERVER_PORT);
  await px.listen();
});

after(async () => {
  for (const c of clients) await c.close();
  await px?.close();
  await server?.stop();
});

const uid = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

function client(user, baseUrl = server.url) {
  const c = new ChatClient({
    baseUrl,
    token: () => token(user),
    backoff: { baseMs: 200, maxMs: 1000 },
    connectTimeoutMs: 3000,
    pingIntervalMs: 1000,
    pongTimeoutMs: 2000,
  });
  clients.push(c);
  return c;
}

async function until(pred, what, timeoutMs = 20_000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every event of a room or inbox, in order, as short strings. */
function record(target, kinds) {
  const log = [];
  for (const k of kinds) {
    target.on(k, (p) => {
      const m = p.message ?? p;
      if (k === "message" || k === "dm") log.push(`${k}:${m.text}`);
      else if (k === "updated") log.push(`updated:${m.deleted ? "(deleted)" : m.text}:${JSON.stringify(m.reactions ?? {})}`);
      else if (k === "reaction") log.push(`reaction:${p.emoji}:${p.count}`);
      else log.push(`${k}:${p.messageId ?? p.reason ?? ""}`);
    });
  }
  return log;
}

test("rooms: edits, deletions and reactions reach the other client; typed refusals; a client cut off learns of the changes on resume", async (t) => {
  const [alice, bob] = [uid("alice"), uid("bob")];
  for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const created = await api(server.url, alice, "/api/chat/rooms", { method: "POST", json: { name: uid("life"), category: "tech" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const roomId = created.body.id;
  const a = client(alice);
  const b = client(bob, px.url);
  const ra = a.room(roomId);
  const rb = b.room(roomId);
  const kinds = ["message", "updated", "deleted", "reaction", "reload"];
  const logA = record(ra, kinds);
  const logB = record(rb, kinds);
  await until(() => ra.position !== null && rb.position !== null, "both joined");

  const one = await ra.send({ text: "one" });
  const two = await ra.send({ text: "two", mentions: [bob] });
  const edited = await ra.editMessage(one.id, "one, edited");
  assert.equal(edited.text, "one, edited");
  assert.ok(edited.editedAt > 0);
  await rb.react(two.id, "👍");
  await until(() => logA.includes('reaction:👍:1') && logB.includes('updated:one, edited:{}'), "the changes on both sides");
  // Bob's own reaction comes back to him as the message as it now is (from his ack).
  assert.ok(logB.includes('updated:two:{"👍":1}'), logB.join(" | "));

  // Typed refusals: not the author; not one emoji. Nothing changed, the socket goes on.
  await assert.rejects(rb.editMessage(one.id, "mine now"), (e) => e.code === "forbidden");
  await assert.rejects(rb.deleteMessage(one.id), (e) => e.code === "forbidden");
  await assert.rejects(rb.react(one.id, "not an emoji"), (e) => e.code === "bad_request");
  await rb.markRead(two.seq);

  // Bob is cut off; meanwhile Alice edits "two", reacts to it, deletes "one" and sends "three".
  const revBefore = rb.rev;
  px.cut();
  await until(() => rb.state !== "open", "bob to notice");
  const bobBefore = logB.length;
  await ra.editMessage(two.id, "two, edited while bob was away");
  await ra.react(two.id, "🎉");
  await ra.deleteMessage(one.id);
  await ra.send({ text: "three" });
  px.heal();
  await until(() => logB.includes("message:three"), "bob back, with the message sent meanwhile");
  await until(() => logB.slice(bobBefore).some((l) => l.startsWith("deleted:") || l.includes("(deleted)")), "the deletion on bob's side");
  const missed = logB.slice(bobBefore);
  // Each change once, as it now is: the message "two" in its latest state, "one" deleted.
  const twoNow = missed.filter((l) => l.startsWith("updated:two, edited while bob was away"));
  assert.equal(twoNow.length, 1, missed.join(" | "));
  assert.match(twoNow[0], /"🎉":1/);
  assert.match(twoNow[0], /"👍":1/);
  assert.equal(missed.filter((l) => l === "message:three").length, 1);
  assert.ok(!missed.some((l) => l.startsWith("reload")), missed.join(" | "));
  assert.ok(rb.rev > revBefore);

  // The REST helpers on the same data: search finds the edit by its new text, not the deleted one.
  const found = await b.rest.searchRoom(roomId, { q: "edited" });
  assert.deepEqual(found.messages.map((m) => m.text), ["two, edited while bob was away"]);
  const joined = await b.rest.rooms({ joined: true });
  const mine = joined.rooms.find((r) => r.id === roomId);
  assert.ok(mine, "the room is in bob's joined list");
  assert.equal(typeof mine.unread, "number");
});

test("DMs: an edit and a reaction made while the peer was cut off reach it on resume (sync with sinceRev), once", async (t) => {
  const [alice, bob] = [uid("alice"), uid("bob")];
  for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const a = client(alice);
  const b = client(bob, px.url);
  const ia = a.inbox();
  const ib = b.inbox();
  const kinds = ["dm", "updated", "deleted", "reaction"];
  const logB = record(ib, kinds);
  await until(() => ia.state === "open" && ib.state === "open", "both inboxes open");
  const hi = await ia.send(bob, { text: "hi bob" });
  await until(() => logB.includes("dm:hi bob"), "the DM");
  await ia.editMessage(hi.conversationId, hi.id, "hi bob!");
  await until(() => logB.some((l) => l.startsWith("updated:hi bob!")), "the live edit");

  px.cut();
  await until(() => ib.state !== "open", "bob to notice");
  const before = logB.length;
  await ia.editMessage(hi.conversationId, hi.id, "hi bob, edited while you were away");
  await ia.react(hi.conversationId, hi.id, "❤️");
  px.heal();
  await until(() => logB.slice(before).some((l) => l.includes("edited while you were away") && l.includes("❤️")), "the changes on resume");
  await new Promise((r) => setTimeout(r, 500));
  const missed = logB.slice(before);
  assert.equal(missed.filter((l) => l.includes("edited while you were away")).length, 1, missed.join(" | "));

  // Search over the caller's DMs finds the edited text.
  const found = await b.rest.searchDms({ q: "away" });
  assert.deepEqual(found.messages.map((m) => m.id), [hi.id]);
});
