/** REST /api/chat/rooms and the room socket's refusals before the upgrade, through the worker's fetch. */
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { cellOf } from "../../src/suggestions/geo";
import { ROOM_CATEGORIES, slugify } from "../../src/routes/rooms";
import { api, BASE, tokenFor } from "../helpers";
import { joined, sendText } from "../helpers/rooms";

interface RoomBody {
  id: string;
  name: string;
  category: string;
  description: string;
  lat: number | null;
  lon: number | null;
  createdBy: string;
  onlineCount: number;
  messageCount: number;
}
interface ErrorBody {
  error: { code: string; message: string; retryAfterMs?: number };
}

async function create(user: string, body: Record<string, unknown>): Promise<Response> {
  return api(user, "/api/chat/rooms", { method: "POST", json: body });
}

async function list(query: string): Promise<{ rooms: RoomBody[]; nextCursor: string | null }> {
  const res = await api("reader", `/api/chat/rooms${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

describe("POST /api/chat/rooms", () => {
  it("creates a room with a slug id and the caller as creator", async () => {
    const res = await create("alice", { name: "  Café Racers! ", category: "sports", description: "Two wheels." });
    expect(res.status).toBe(201);
    const room = (await res.json()) as RoomBody;
    expect(room).toMatchObject({
      id: "cafe-racers",
      name: "Café Racers!",
      category: "sports",
      description: "Two wheels.",
      createdBy: "alice",
      lat: null,
      lon: null,
      onlineCount: 0,
    });
    const again = await api("bob", "/api/chat/rooms/cafe-racers");
    expect(await again.json()).toMatchObject({ id: "cafe-racers", name: "Café Racers!" });
  });

  it("keeps ids unique and away from route words", async () => {
    const ids: string[] = [];
    for (const name of ["Night Owls", "night owls", "NIGHT-OWLS", "Suggestions", "🙂🙂"]) {
      const res = await create("carol", { name, category: "general" });
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as RoomBody).id);
    }
    expect(ids).toEqual(["night-owls", "night-owls-2", "night-owls-3", "suggestions-2", "room"]);
  });

  it("stores a location with its spatial cell", async () => {
    const res = await create("dave", { name: "Lisbon Locals", category: "local", lat: 38.7223, lon: -9.1393 });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ lat: 38.7223, lon: -9.1393 });
    const row = await env.DB.prepare("SELECT cell FROM rooms WHERE id = 'lisbon-locals'").first<{ cell: string }>();
    expect(row?.cell).toBe(cellOf(38.7223, -9.1393));
  });

  it.each([
    [{ category: "general" }, /name/],
    [{ name: "   ", category: "general" }, /name/],
    [{ name: "x".repeat(65), category: "general" }, /64/],
    [{ name: "Ok", category: "cooking" }, /category/],
    [{ name: "Ok", category: "general", description: "d".repeat(501) }, /500/],
    [{ name: "Ok", category: "general", lat: 10 }, /lat and lon/],
    [{ name: "Ok", category: "general", lat: 91, lon: 0 }, /lat/],
    [{ name: "Ok", category: "general", lat: 0, lon: 181 }, /lon/],
    // Half of a surrogate pair (JSON's "\ud800"): D1 would store it as 3 U+FFFD, not what the 201 echoed.
    [{ name: "ab\uD800cd", category: "general" }, /name.*surrogate/],
    [{ name: "Ok", category: "general", description: "cut \uD83D" }, /description.*surrogate/],
  ])("refuses %j with a 400 naming the field", async (body, message) => {
    const before = await env.DB.prepare("SELECT count(*) AS n FROM rooms").first<{ n: number }>();
    const res = await create("erin", body);
    expect(res.status).toBe(400);
    const err = (await res.json()) as ErrorBody;
    expect(err.error.code).toBe("bad_request");
    expect(err.error.message).toMatch(message);
    const after = await env.DB.prepare("SELECT count(*) AS n FROM rooms").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it("stores a name with emoji exactly as the 201 answered it", async () => {
    const res = await create("emoji-fan", { name: "Ping 🏓 pong", category: "general", description: "😀 first" });
    expect(res.status).toBe(201);
    const created = (await res.json()) as RoomBody;
    const read = (await (await api("bob", `/api/chat/rooms/${created.id}`)).json()) as RoomBody;
    expect({ name: read.name, description: read.description }).toEqual({ name: "Ping 🏓 pong", description: "😀 first" });
  });

  it("refuses malformed JSON", async () => {
    const res = await api("erin", "/api/chat/rooms", { method: "POST", body: "{nope", headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(400);
  });

  it("limits rooms per user per day with 429 rate_limited", async () => {
    const limit = Number(env.ROOM_CREATE_LIMIT_PER_DAY);
    for (let i = 0; i < limit; i++) expect((await create("greedy", { name: `Greedy ${i}`, category: "other" })).status).toBe(201);
    const res = await create("greedy", { name: "One more", category: "other" });
    expect(res.status).toBe(429);
    const err = (await res.json()) as ErrorBody;
    expect(err.error.code).toBe("rate_limited");
    expect(err.error.retryAfterMs).toBeGreaterThan(0);
    expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
    // Rooms older than a day no longer count.
    await env.DB.prepare("UPDATE rooms SET created_at = created_at - 86400001 WHERE created_by = 'greedy'").run();
    expect((await create("greedy", { name: "Next day", category: "other" })).status).toBe(201);
    // Others are not affected.
    expect((await create("modest", { name: "One more", category: "other" })).status).toBe(201);
  });

  it("needs a token", async () => {
    const res = await api(null, "/api/chat/rooms", { method: "POST", json: { name: "x", category: "general" } });
    expect(res.status).toBe(401);
  });
});

describe("GET /api/chat/rooms", () => {
  it("pages through rooms in id order with a cursor, filtered by category and name", async () => {
    // 12 rooms in three categories, created by several users (the daily limit is per user).
    const names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet", "Kilo", "Lima"];
    for (const [i, name] of names.entries()) {
      const category = ["music", "arts", "science"][i % 3];
      expect((await create(`maker${i % 4}`, { name: `Page ${name}`, category })).status).toBe(201);
    }
    const all: RoomBody[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await list(`?q=page&limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      all.push(...page.rooms);
      cursor = page.nextCursor;
      pages++;
      expect(page.rooms.length).toBeLessThanOrEqual(5);
    } while (cursor);
    expect(pages).toBe(3);
    expect(all.map((r) => r.id)).toEqual(names.map((n) => `page-${n.toLowerCase()}`));

    const music = await list("?category=music&q=PAGE&limit=100");
    expect(music.rooms.map((r) => r.id)).toEqual(["page-alpha", "page-delta", "page-golf", "page-juliet"]);
    expect(music.nextCursor).toBeNull();
    const arts = await list("?category=arts&limit=2");
    expect(arts.rooms.map((r) => r.id)).toEqual(["page-bravo", "page-echo"]);
    const arts2 = await list(`?category=arts&limit=2&cursor=${arts.nextCursor}`);
    expect(arts2.rooms.map((r) => r.id)).toEqual(["page-hotel", "page-kilo"]);
    expect(arts2.nextCursor).toBeNull();
    expect((await list("?q=ECHO")).rooms.map((r) => r.id)).toEqual(["page-echo"]);
  });

  it("treats % and _ in q literally", async () => {
    await create("lit", { name: "100% Jazz", category: "music" });
    await create("lit", { name: "1000 Jazz", category: "music" });
    await create("lit", { name: "snake_case", category: "tech" });
    await create("lit", { name: "snakeXcase", category: "tech" });
    expect((await list("?q=100%25")).rooms.map((r) => r.name)).toEqual(["100% Jazz"]);
    expect((await list("?q=snake_")).rooms.map((r) => r.name)).toEqual(["snake_case"]);
  });

  it.each([
    ["?limit=101", /limit/],
    ["?limit=0", /limit/],
    ["?category=cooking", /category/],
    ["?cursor=%%%", /cursor/],
    ["?cursor=bm90IGEgc2x1Zw", /cursor/],
    // Empty is not "from the start" (as on the block and DM lists): a client that sends `nextCursor ?? ""`
    // after the last page would loop over the first page forever.
    ["?cursor=", /cursor/],
  ])("refuses %s with a 400", async (query, message) => {
    const res = await api("reader", `/api/chat/rooms${query}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.message).toMatch(message);
  });

  it("needs a token", async () => {
    expect((await api(null, "/api/chat/rooms")).status).toBe(401);
  });
});

describe("GET /api/chat/rooms/categories", () => {
  it("lists every category with its room count", async () => {
    const before = (await (await api("reader", "/api/chat/rooms/categories")).json()) as { categories: { category: string; count: number }[] };
    expect(before.categories.map((c) => c.category)).toEqual([...ROOM_CATEGORIES]);
    const n = (cat: string, body: typeof before) => body.categories.find((c) => c.category === cat)?.count;
    await create("cat-maker", { name: "Cat Science 1", category: "science" });
    await create("cat-maker", { name: "Cat Science 2", category: "science" });
    await create("cat-maker", { name: "Cat News", category: "news" });
    const after = (await (await api("reader", "/api/chat/rooms/categories")).json()) as typeof before;
    expect(n("science", after)).toBe((n("science", before) ?? 0) + 2);
    expect(n("news", after)).toBe((n("news", before) ?? 0) + 1);
    expect(n("gaming", after)).toBe(n("gaming", before));
  });
});

describe("GET /api/chat/rooms/:roomId/messages", () => {
  it("pages history newest first by seq, from the room's own storage", async () => {
    await create("hist", { name: "History Room", category: "general" });
    const a = await joined("hist", "history-room");
    for (let i = 1; i <= 7; i++) await sendText(a, `h${i}`);
    a.close();
    const seqs: number[][] = [];
    let before: number | null = null;
    for (;;) {
      const res = await api("reader", `/api/chat/rooms/history-room/messages?limit=3${before ? `&before=${before}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { messages: { seq: number; text: string; roomId: string }[]; nextBefore: number | null };
      seqs.push(page.messages.map((m) => m.seq));
      if (page.messages[0]) expect(page.messages[0]).toMatchObject({ roomId: "history-room", text: `h${page.messages[0].seq}` });
      if (page.nextBefore === null) break;
      before = page.nextBefore;
    }
    expect(seqs).toEqual([[7, 6, 5], [4, 3, 2], [1]]);
    const empty = (await (await api("reader", "/api/chat/rooms/history-room/messages?before=1")).json()) as { messages: unknown[]; nextBefore: null };
    expect(empty).toEqual({ messages: [], nextBefore: null });
  });

  it("answers 404 for an unknown room and 400 for bad paging", async () => {
    const res = await api("reader", "/api/chat/rooms/no-such-room/messages");
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorBody).error.code).toBe("not_found");
    await create("hist2", { name: "Paging", category: "general" });
    expect((await api("reader", "/api/chat/rooms/paging/messages?limit=101")).status).toBe(400);
    expect((await api("reader", "/api/chat/rooms/paging/messages?before=abc")).status).toBe(400);
    expect((await api("reader", "/api/chat/rooms/Not_A_Slug/messages")).status).toBe(400);
  });
});

describe("GET /api/chat/rooms/:roomId/ws before the upgrade", () => {
  it("refuses an unknown room with 404, a plain GET with 426, and no token with 401", async () => {
    const token = await tokenFor("wsuser");
    const unknown = await SELF.fetch(`${BASE}/api/chat/rooms/nowhere/ws`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(404);
    expect(unknown.webSocket).toBeNull();
    await create("wsuser", { name: "Sockets", category: "tech" });
    const plain = await SELF.fetch(`${BASE}/api/chat/rooms/sockets/ws`, { headers: { Authorization: `Bearer ${token}` } });
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as ErrorBody).error.code).toBe("bad_request");
    const anon = await SELF.fetch(`${BASE}/api/chat/rooms/sockets/ws`, { headers: { Upgrade: "websocket" } });
    expect(anon.status).toBe(401);
    // The token may also come as ?token= or in Sec-WebSocket-Protocol, whose app protocol is echoed.
    const viaQuery = await SELF.fetch(`${BASE}/api/chat/rooms/sockets/ws?token=${token}`, { headers: { Upgrade: "websocket" } });
    expect(viaQuery.status).toBe(101);
    viaQuery.webSocket?.accept();
    viaQuery.webSocket?.close(1000);
    const viaProtocol = await SELF.fetch(`${BASE}/api/chat/rooms/sockets/ws`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `edge-chat, bearer.${token}` },
    });
    expect(viaProtocol.status).toBe(101);
    expect(viaProtocol.headers.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
    viaProtocol.webSocket?.accept();
    viaProtocol.webSocket?.close(1000);
  });
});

describe("OpenAPI", () => {
  it("documents the room routes", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/api/chat/rooms"]).sort()).toEqual(["get", "post"]);
    expect(doc.paths["/api/chat/rooms/categories"].get).toBeDefined();
    expect(doc.paths["/api/chat/rooms/{roomId}"].get).toBeDefined();
    expect(doc.paths["/api/chat/rooms/{roomId}/messages"].get).toBeDefined();
  });
});

describe("slugify", () => {
  it("makes lowercase ASCII slugs", () => {
    expect(slugify("Hello, World")).toBe("hello-world");
    expect(slugify("Ünïcödé  Straße")).toBe("unicode-stra-e");
    expect(slugify("--a--")).toBe("a");
    expect(slugify("日本語")).toBe("room");
    expect(slugify("x".repeat(80))).toHaveLength(48);
  });
});
