/** The SDK's REST helpers: URLs, auth, errors as ChatError, uploads with progress (XMLHttpRequest) or fetch. */
import { afterEach, describe, expect, it } from "vitest";
import { ChatClient, ChatError } from "../../client/src/index.js";
import { socketClass } from "./fake";

function restClient(answer: (url: string, init: RequestInit) => Response) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  let n = 0;
  const chat = new ChatClient({
    baseUrl: "http://chat.test/",
    token: () => `tok${++n}`,
    WebSocket: socketClass().WebSocket,
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(input), init: init ?? {} });
      return answer(String(input), init ?? {});
    }) as typeof fetch,
  });
  return { chat, calls };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const g = globalThis as { XMLHttpRequest?: unknown };
afterEach(() => {
  delete g.XMLHttpRequest;
});

describe("REST helpers", () => {
  it("build URLs with encoded parameters, send the token from the provider, and return the JSON", async () => {
    const { chat, calls } = restClient((url) =>
      url.includes("categories") ? json({ categories: [{ category: "tech", count: 2 }] }) : json({ rooms: [], nextCursor: null }),
    );
    expect(await chat.rest.rooms({ category: "tech", q: "a&b", limit: 5 })).toEqual({ rooms: [], nextCursor: null });
    expect(calls[0].url).toBe("http://chat.test/api/chat/rooms?category=tech&q=a%26b&limit=5");
    expect((calls[0].init.headers as Record<string, string>).Authorization).toBe("Bearer tok1");
    expect(await chat.rest.categories()).toEqual([{ category: "tech", count: 2 }]);
    expect((calls[1].init.headers as Record<string, string>).Authorization).toBe("Bearer tok2");
    await chat.rest.roomHistory("a room/x", { before: 10 });
    expect(calls[2].url).toBe("http://chat.test/api/chat/rooms/a%20room%2Fx/messages?before=10");
    await chat.rest.openConversation("bob");
    expect(calls[3].init.method).toBe("POST");
    await chat.rest.blocks({ cursor: "c1", limit: 2 });
    expect(calls[4].url).toBe("http://chat.test/api/chat/blocks?cursor=c1&limit=2");
    expect(calls[3].init.body).toBe('{"userId":"bob"}');
    await chat.close();
  });

  it("turn error answers into ChatError with code, status and requestId; no answer is `network`", async () => {
    const { chat } = restClient((url) => {
      if (url.includes("blocks")) throw new TypeError("fetch failed");
      return json({ error: { code: "blocked", message: "bob blocks you", requestId: "r1" } }, 403);
    });
    const err = await chat.rest.openConversation("bob").catch((e) => e);
    expect(err).toBeInstanceOf(ChatError);
    expect(err).toMatchObject({ code: "blocked", status: 403, requestId: "r1", message: "bob blocks you" });
    await expect(chat.rest.blocks()).rejects.toMatchObject({ code: "network" });
    await chat.close();
  });

  it("lifecycle, search and moderation helpers: paths, methods and bodies per DESIGN.md; `until` kept from an error body", async () => {
    const { chat, calls } = restClient((url, init) =>
      url.includes("/mutes/") && init.method === "PUT" ? json({ error: { code: "forbidden", message: "moderators only", requestId: "r2" } }, 403) : json({ ok: true }),
    );
    const r = chat.rest;
    await r.rooms({ joined: true });
    await r.searchRoom("a b", { q: "hello world", limit: 5 });
    await r.searchDms({ q: "lunch", conversationId: "dm_a", cursor: "c1" });
    await r.replies("general", "m/1", { limit: 10 });
    await r.createRoom({ name: "Mods", category: "tech", visibility: "private" });
    await r.updateRoom("general", { slowModeSec: 30, frozen: true });
    await r.deleteRoom("general");
    await r.setModerator("general", "bob");
    await r.setModerator("general", "bob", false);
    await r.ban("general", "bob", { reason: "spam", durationSec: 3600 });
    await r.unban("general", "bob");
    await r.bans("general");
    await expect(r.mute("general", "bob", { durationSec: 60 })).rejects.toMatchObject({ code: "forbidden", status: 403, requestId: "r2" });
    await r.unmute("general", "bob");
    await r.kick("general", "bob", "calm down");
    await r.pin("general", "m1");
    await r.pin("general", "m1", false);
    await r.setFilters("general", ["darn"]);
    await r.report("general", "m1", "rude");
    await r.reports("general", { status: "all", limit: 20 });
    await r.resolveReport("general", 7, "warned");
    await r.audit("general", { before: 99 });
    await r.setMember("secret", "carol");
    await r.setMember("secret", "carol", false);
    await r.members("secret");
    const seen = calls.map((c) => `${c.init.method} ${c.url.replace("http://chat.test", "")}${c.init.body ? ` ${c.init.body}` : ""}`);
    expect(seen).toEqual([
      "GET /api/chat/rooms?joined=true",
      "GET /api/chat/rooms/a%20b/search?q=hello%20world&limit=5",
      "GET /api/chat/dms/search?q=lunch&conversationId=dm_a&cursor=c1",
      "GET /api/chat/rooms/general/messages/m%2F1/replies?limit=10",
      'POST /api/chat/rooms {"name":"Mods","category":"tech","visibility":"private"}',
      'PATCH /api/chat/rooms/general {"slowModeSec":30,"frozen":true}',
      "DELETE /api/chat/rooms/general",
      "PUT /api/chat/rooms/general/moderators/bob",
      "DELETE /api/chat/rooms/general/moderators/bob",
      'PUT /api/chat/rooms/general/bans/bob {"reason":"spam","durationSec":3600}',
      "DELETE /api/chat/rooms/general/bans/bob",
      "GET /api/chat/rooms/general/bans",
      'PUT /api/chat/rooms/general/mutes/bob {"durationSec":60}',
      "DELETE /api/chat/rooms/general/mutes/bob",
      'POST /api/chat/rooms/general/kicks {"userId":"bob","reason":"calm down"}',
      "PUT /api/chat/rooms/general/pins/m1",
      "DELETE /api/chat/rooms/general/pins/m1",
      'PUT /api/chat/rooms/general/filters {"words":["darn"]}',
      'POST /api/chat/rooms/general/messages/m1/reports {"reason":"rude"}',
      "GET /api/chat/rooms/general/reports?status=all&limit=20",
      'POST /api/chat/rooms/general/reports/7/resolve {"resolution":"warned"}',
      "GET /api/chat/rooms/general/audit?before=99",
      "PUT /api/chat/rooms/secret/members/carol",
      "DELETE /api/chat/rooms/secret/members/carol",
      "GET /api/chat/rooms/secret/members",
    ]);
    const { chat: c2 } = restClient(() => json({ error: { code: "banned", message: "banned", until: 1234 } }, 403));
    await expect(c2.rest.getRoom("general")).rejects.toMatchObject({ code: "banned", until: 1234 });
    await chat.close();
    await c2.close();
  });

  it("upload reports progress through XMLHttpRequest when there is one", async () => {
    const sent: unknown[] = [];
    class FakeXhr {
      status = 0;
      responseText = "";
      headers: Record<string, string> = {};
      upload: { onprogress: ((ev: { loaded: number; total: number }) => void) | null } = { onprogress: null };
      onload: (() => void) | null = null;
      onerror: (() => void) | null = null;
      url = "";
      open(_m: string, url: string) {
        this.url = url;
      }
      setRequestHeader(k: string, v: string) {
        this.headers[k] = v;
      }
      send(body: unknown) {
        sent.push(body, this.url, this.headers.Authorization);
        this.upload.onprogress?.({ loaded: 2, total: 4 });
        this.upload.onprogress?.({ loaded: 4, total: 4 });
        this.status = 201;
        this.responseText = JSON.stringify({ id: "m1", url: "/api/chat/media/m1", contentType: "image/png", size: 4 });
        this.onload?.();
      }
    }
    g.XMLHttpRequest = FakeXhr;
    const { chat, calls } = restClient(() => json({}));
    const progress: number[] = [];
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const media = await chat.rest.upload(bytes, { onProgress: (p) => progress.push(p.loaded) });
    expect(media.id).toBe("m1");
    expect(progress).toEqual([2, 4]);
    expect(sent).toEqual([bytes, "http://chat.test/api/chat/media", "Bearer tok1"]);
    expect(calls).toHaveLength(0);
    await chat.close();
  });

  it("upload uses fetch without XMLHttpRequest (or without onProgress), and maps a 413 to ChatError", async () => {
    const { chat, calls } = restClient(() => json({ error: { code: "too_large", message: "over 10 MB" } }, 413));
    await expect(chat.rest.upload(new Uint8Array([1]), { onProgress: () => {} })).rejects.toMatchObject({ code: "too_large", status: 413 });
    expect(calls[0].url).toBe("http://chat.test/api/chat/media");
    expect(calls[0].init.method).toBe("POST");
    await chat.close();
  });
});
