/**
 * Socket upgrades through the Worker (issue 11 points 3 and 4, issue 12's one forwarder): which
 * subprotocol is echoed however the token came, that no token ever leaves in a response header,
 * that any display name connects to both sockets, and that client-sent trusted headers are ignored.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { NAME_MAX, wellFormedName } from "../../src/auth";
import { decodeHeaderValue, encodeHeaderValue, UPGRADE_HEADERS, upgradeRequest } from "../../src/objects/upgrade";
import type { ServerMessage } from "../../src/protocol";
import { api, BASE, tokenFor } from "../helpers";

let n = 0;
const uid = (name: string) => `${name}-${++n}-${crypto.randomUUID().slice(0, 8)}`;

const ROOM = "upgrades";
// Created through the API, as a client would (the slug of the name is the id).
const roomReady = api("room-maker", "/api/chat/rooms", { method: "POST", json: { name: "Upgrades", category: "tech" } }).then(async (res) => {
  if (res.status !== 201) throw new Error(`room: ${res.status} ${await res.text()}`);
});
const ROOM_WS = `/api/chat/rooms/${ROOM}/ws`;
const INBOX_WS = "/api/chat/ws";

/** An upgrade through the worker with exactly these headers; the socket is accepted if one came back. */
async function upgrade(path: string, headers: Record<string, string>): Promise<Response> {
  await roomReady;
  const res = await SELF.fetch(`${BASE}${path}`, { headers: { Upgrade: "websocket", ...headers } });
  res.webSocket?.accept();
  return res;
}

/** Resolves with the first frame matching `pred` on an accepted socket. */
function frame<T extends ServerMessage>(ws: WebSocket, pred: (m: ServerMessage) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no matching frame")), 5000);
    ws.addEventListener("message", (ev) => {
      const data = JSON.parse(ev.data as string) as ServerMessage;
      for (const m of data.type === "batch" ? data.frames : [data]) {
        if (pred(m)) {
          clearTimeout(timer);
          resolve(m as T);
        }
      }
    });
  });
}

function allHeaders(res: Response): string {
  return [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
}

describe("the subprotocol echoed on an upgrade", () => {
  for (const [label, path] of [["room", ROOM_WS], ["inbox", INBOX_WS]] as const) {
    it(`${label}: edge-chat is echoed whether the token came as ?token=, Authorization or bearer.`, async () => {
      const token = await tokenFor(uid("echo"));
      const viaQuery = await upgrade(`${path}?token=${token}`, { "Sec-WebSocket-Protocol": "edge-chat" });
      const viaHeader = await upgrade(path, { Authorization: `Bearer ${token}`, "Sec-WebSocket-Protocol": "edge-chat" });
      const viaProtocol = await upgrade(path, { "Sec-WebSocket-Protocol": `edge-chat, bearer.${token}` });
      const tokenLast = await upgrade(path, { "Sec-WebSocket-Protocol": `bearer.${token}, edge-chat` });
      for (const res of [viaQuery, viaHeader, viaProtocol, tokenLast]) {
        expect(res.status).toBe(101);
        expect(res.headers.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
        expect(allHeaders(res)).not.toContain(token);
        res.webSocket?.close(1000);
      }
    });

    it(`${label}: a bearer. entry is never echoed; with nothing else offered, nothing is`, async () => {
      const token = await tokenFor(uid("bearer-only"));
      const res = await upgrade(path, { "Sec-WebSocket-Protocol": `bearer.${token}` });
      expect(res.status).toBe(101);
      expect(res.headers.get("Sec-WebSocket-Protocol")).toBeNull();
      expect(allHeaders(res)).not.toContain(token);
      expect(allHeaders(res)).not.toContain("bearer.");
      res.webSocket?.close(1000);
      // A protocol we do not speak is not echoed either (the client would believe we speak it).
      const other = await upgrade(`${path}?token=${token}`, { "Sec-WebSocket-Protocol": "mqtt" });
      expect(other.status).toBe(101);
      expect(other.headers.get("Sec-WebSocket-Protocol")).toBeNull();
      other.webSocket?.close(1000);
      // No protocol offered: none echoed, as before.
      const none = await upgrade(`${path}?token=${token}`, {});
      expect(none.status).toBe(101);
      expect(none.headers.get("Sec-WebSocket-Protocol")).toBeNull();
      none.webSocket?.close(1000);
    });
  }
});

describe("display names at the one place they enter", () => {
  it("wellFormedName cuts by code points and replaces lone surrogates", () => {
    const emoji = "😀";
    expect(wellFormedName("a".repeat(NAME_MAX - 1) + emoji + emoji)).toBe("a".repeat(NAME_MAX - 1) + emoji);
    expect(wellFormedName(emoji.repeat(NAME_MAX + 5))).toBe(emoji.repeat(NAME_MAX));
    expect(wellFormedName("ab\uD800cd")).toBe("ab\uFFFDcd");
    expect(wellFormedName("x\uDC00")).toBe("x\uFFFD");
    expect(wellFormedName("  Zoë  ")).toBe("Zoë");
    expect(wellFormedName("   ")).toBe("");
    expect(wellFormedName(`${"b".repeat(NAME_MAX - 1)} tail`)).toBe("b".repeat(NAME_MAX - 1));
  });

  const cases = [
    { label: "a lone surrogate", name: "ab\uD800cd", seen: "ab\uFFFDcd" },
    { label: "an emoji at the 64th character", name: `${"a".repeat(NAME_MAX - 1)}😀😀`, seen: `${"a".repeat(NAME_MAX - 1)}😀` },
  ];
  for (const { label, name, seen } of cases) {
    it(`a name with ${label} connects to the room and the inbox, and is seen well-formed`, async () => {
      const user = uid("named");
      const token = await tokenFor(user, { name });
      const me = await SELF.fetch(`${BASE}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
      expect(((await me.json()) as { name: string }).name).toBe(seen);

      const room = await upgrade(ROOM_WS, { Authorization: `Bearer ${token}` });
      expect(room.status, room.status === 101 ? "" : await room.text()).toBe(101);
      const ws = room.webSocket as WebSocket;
      const state = frame<Extract<ServerMessage, { type: "room_state" }>>(ws, (m) => m.type === "room_state");
      ws.send(JSON.stringify({ type: "join_room" }));
      expect((await state).present).toContainEqual({ userId: user, name: seen });
      ws.close(1000);

      const inbox = await upgrade(INBOX_WS, { Authorization: `Bearer ${token}` });
      expect(inbox.status, inbox.status === 101 ? "" : await inbox.text()).toBe(101);
      const iws = inbox.webSocket as WebSocket;
      const pong = frame(iws, (m) => m.type === "pong" && m.id === "p1");
      iws.send(JSON.stringify({ type: "ping", id: "p1" }));
      await pong;
      iws.close(1000);
    });
  }
});

describe("the one upgrade forwarder", () => {
  it("strips client copies of trusted headers and every trace of the token, and sets the identity", () => {
    const client = new Request("http://localhost/api/chat/ws?token=SECRET&lat=1&lon=2", {
      headers: {
        Upgrade: "websocket",
        Authorization: "Bearer SECRET",
        "Sec-WebSocket-Protocol": "edge-chat, bearer.SECRET",
        "X-Chat-User-Id": "mallory",
        "X-Chat-Anything": "x",
        "X-Inbox-User-Id": "mallory",
        "X-Inbox-Protocol": "bearer.SECRET",
        "User-Agent": "test",
      },
    });
    const fwd = upgradeRequest(client, { userId: "auth0|alice", userName: "Al\uD800ice", roomId: "general", protocol: "edge-chat" });
    expect(fwd.headers.get(UPGRADE_HEADERS.userId)).toBe(encodeURIComponent("auth0|alice"));
    expect(decodeHeaderValue(fwd.headers.get(UPGRADE_HEADERS.userId))).toBe("auth0|alice");
    expect(decodeHeaderValue(fwd.headers.get(UPGRADE_HEADERS.userName))).toBe("Al\uFFFDice");
    expect(decodeHeaderValue(fwd.headers.get(UPGRADE_HEADERS.roomId))).toBe("general");
    expect(decodeHeaderValue(fwd.headers.get(UPGRADE_HEADERS.protocol))).toBe("edge-chat");
    expect(fwd.headers.get("X-Chat-Anything")).toBeNull();
    expect(fwd.headers.get("Authorization")).toBeNull();
    expect(fwd.headers.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
    expect(fwd.headers.get("User-Agent")).toBe("test");
    expect(fwd.headers.get("Upgrade")).toBe("websocket");
    expect(new URL(fwd.url).searchParams.get("lat")).toBe("1");
    expect(fwd.url).not.toContain("SECRET");
    expect(allHeaders(new Response(null, { headers: fwd.headers }))).not.toContain("SECRET");
    expect(allHeaders(new Response(null, { headers: fwd.headers }))).not.toContain("mallory");
  });

  it("encodes any string without throwing, and decodes malformed values to null", () => {
    const cases: [string, string][] = [["\uD800", "\uFFFD"], ["\uDFFF", "\uFFFD"], ["a\uD83Db", "a\uFFFDb"], ["😀", "😀"], ["%", "%"], ["Zoë", "Zoë"]];
    for (const [input, decoded] of cases) {
      expect(() => encodeHeaderValue(input)).not.toThrow();
      expect(decodeHeaderValue(encodeHeaderValue(input))).toBe(decoded);
    }
    expect(decodeHeaderValue("%E0%A4%A")).toBeNull();
    expect(decodeHeaderValue(null)).toBeNull();
  });

  it("the inbox route ignores a client's X-Chat-User-Id and X-Inbox-User-Id: the socket is the token's user", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    for (const u of [alice, bob]) expect((await api(u, "/api/me")).status).toBe(200);
    const res = await upgrade(INBOX_WS, {
      Authorization: `Bearer ${await tokenFor(alice)}`,
      [UPGRADE_HEADERS.userId]: "mallory",
      [UPGRADE_HEADERS.userName]: "Mallory",
      "X-Inbox-User-Id": "mallory",
      "X-Inbox-User-Name": "Mallory",
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket as WebSocket;
    const ack = frame<Extract<ServerMessage, { type: "ack" }>>(ws, (m) => (m.type === "ack" || m.type === "error") && m.id === "d1");
    ws.send(JSON.stringify({ type: "send_dm", id: "d1", to: bob, clientMsgId: "c1", text: "who am I" }));
    expect((await ack).message).toMatchObject({ from: alice, to: bob });
    ws.close(1000);
    // And the room route, for symmetry: the present user is the token's.
    const room = await upgrade(ROOM_WS, { Authorization: `Bearer ${await tokenFor(alice)}`, [UPGRADE_HEADERS.userId]: "mallory" });
    const rws = room.webSocket as WebSocket;
    const state = frame<Extract<ServerMessage, { type: "room_state" }>>(rws, (m) => m.type === "room_state");
    rws.send(JSON.stringify({ type: "join_room" }));
    const present = (await state).present.map((p) => p.userId);
    expect(present).toContain(alice);
    expect(present).not.toContain("mallory");
    rws.close(1000);
  });
});
