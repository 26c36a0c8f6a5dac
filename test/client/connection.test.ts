/** The SDK's socket layer: backoff bounds, token per connect, refused connections, heartbeat, batches. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BACKOFF_DEFAULTS, backoffDelay } from "../../client/src/index.js";
import { makeClient, roomState, settle } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("backoffDelay", () => {
  it("stays within [0, min(max, base * 2^attempt)) and is capped", () => {
    const opts = { baseMs: 100, maxMs: 5000 };
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      expect(backoffDelay(attempt, opts, () => 0)).toBe(0);
      const top = backoffDelay(attempt, opts, () => 0.999999);
      expect(top).toBeLessThan(ceiling);
      expect(top).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.999));
    }
    // Far past the point where 2^attempt overflows, still the cap.
    expect(backoffDelay(5000, opts, () => 0.5)).toBe(2500);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(Math.floor(0.5 * Math.min(BACKOFF_DEFAULTS.maxMs, BACKOFF_DEFAULTS.baseMs * 8)));
  });

  it("is jittered over the whole window (full jitter), not around its middle", () => {
    const samples = Array.from({ length: 2000 }, () => backoffDelay(4, { baseMs: 100, maxMs: 10_000 }));
    const ceiling = 1600;
    expect(Math.min(...samples)).toBeLessThan(ceiling * 0.1);
    expect(Math.max(...samples)).toBeGreaterThan(ceiling * 0.9);
    expect(samples.every((s) => s >= 0 && s < ceiling)).toBe(true);
  });
});

describe("Connection (through a room)", () => {
  it("opens lazily, one socket per room, with the token in Sec-WebSocket-Protocol from the provider on every connect", async () => {
    const { chat, sockets, tokenCalls } = makeClient();
    await settle();
    expect(sockets).toHaveLength(0);
    const room = chat.room("general");
    expect(chat.room("general")).toBe(room);
    await settle();
    expect(sockets).toHaveLength(1);
    expect(sockets[0].url).toBe("ws://chat.test/api/chat/rooms/general/ws");
    expect(sockets[0].protocols).toEqual(["edge-chat", "bearer.t1"]);
    sockets[0].open();
    sockets[0].serverClose(1006);
    await vi.advanceTimersByTimeAsync(BACKOFF_DEFAULTS.baseMs);
    expect(sockets).toHaveLength(2);
    expect(sockets[1].protocols).toEqual(["edge-chat", "bearer.t2"]);
    expect(tokenCalls()).toBe(2);
    await chat.close();
  });

  it("treats Node's error-without-close on a refused connection as a failed attempt and retries with growing backoff", async () => {
    const { chat, sockets } = makeClient({ backoff: { baseMs: 100, maxMs: 1000 } });
    const states: string[] = [];
    const room = chat.room("general");
    room.on("connection", (s) => states.push(s));
    await settle();
    // random() = 0.5: the waits are 50, 100, 200, 400, 500, 500 ms.
    const waits = [50, 100, 200, 400, 500, 500];
    for (const [i, wait] of waits.entries()) {
      expect(sockets).toHaveLength(i + 1);
      sockets[i].refuse();
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(sockets).toHaveLength(i + 1);
      await vi.advanceTimersByTimeAsync(1);
    }
    expect(sockets).toHaveLength(waits.length + 1);
    // Never open yet: still "connecting", not "reconnecting".
    expect(states).toEqual([]);
    expect(room.state).toBe("connecting");
    await chat.close();
    expect(room.state).toBe("closed");
  });

  it("never storms: a server that accepts then closes at once is retried with growing backoff, not immediately", async () => {
    const { chat, sockets } = makeClient({ backoff: { baseMs: 100, maxMs: 10_000 } });
    chat.room("general");
    await settle();
    for (let i = 0; i < 8; i++) {
      const s = sockets.at(-1)!;
      s.open();
      s.serverClose(1008);
      await vi.advanceTimersByTimeAsync(100 * 2 ** i);
    }
    // 8 open-and-close cycles took 100 * (2^8 - 1) ms of backoff: no reset, no loop.
    expect(sockets.length).toBe(9);
    sockets[8].open();
    sockets[8].serverClose(1008);
    // The 9th wait is capped: 0.5 × min(10 s, 100 ms × 2^8) = 5 s.
    await vi.advanceTimersByTimeAsync(4999);
    expect(sockets.length).toBe(9);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets.length).toBe(10);
    await chat.close();
  });

  it("abandons an attempt that does not open within connectTimeoutMs", async () => {
    const { chat, sockets } = makeClient({ connectTimeoutMs: 3000 });
    chat.room("general");
    await settle();
    await vi.advanceTimersByTimeAsync(2999);
    expect(sockets[0].closedWith).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets[0].closedWith?.code).toBe(4000);
    await vi.advanceTimersByTimeAsync(250);
    expect(sockets).toHaveLength(2);
    await chat.close();
  });

  it("pings on schedule and drops a connection whose ping gets no answer within pongTimeoutMs", async () => {
    const { chat, sockets } = makeClient({ pingIntervalMs: 1000, pongTimeoutMs: 500 });
    const room = chat.room("general");
    await settle();
    sockets[0].open();
    sockets[0].receive(roomState(0));
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets[0].sent.at(-1)).toBe('{"type":"ping"}');
    sockets[0].receive({ type: "pong" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets[0].sent.filter((s) => s === '{"type":"ping"}')).toHaveLength(2);
    // This one goes unanswered: a frozen connection.
    await vi.advanceTimersByTimeAsync(499);
    expect(room.state).toBe("open");
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets[0].closedWith).toEqual({ code: 4000, reason: "heartbeat timeout" });
    expect(room.state).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(250);
    expect(sockets).toHaveLength(2);
    await chat.close();
  });

  it("any frame counts as life: a ping answered by other traffic keeps the connection", async () => {
    const { chat, sockets } = makeClient({ pingIntervalMs: 1000, pongTimeoutMs: 500 });
    chat.room("general");
    await settle();
    sockets[0].open();
    await vi.advanceTimersByTimeAsync(1000);
    sockets[0].receive({ type: "typing", userId: "bob", on: true, roomId: "general" });
    await vi.advanceTimersByTimeAsync(600);
    expect(sockets[0].closedWith).toBeUndefined();
    await chat.close();
  });

  it("wakes on `online`: a socket waiting a long backoff retries soon", async () => {
    const target = new EventTarget();
    const g = globalThis as unknown as { addEventListener: unknown; removeEventListener: unknown };
    const saved = [g.addEventListener, g.removeEventListener];
    g.addEventListener = target.addEventListener.bind(target);
    g.removeEventListener = target.removeEventListener.bind(target);
    try {
      const { chat, sockets } = makeClient({ backoff: { baseMs: 100, maxMs: 60_000 } });
      chat.room("general");
      await settle();
      for (let i = 0; i < 10; i++) {
        sockets.at(-1)!.refuse();
        await vi.advanceTimersByTimeAsync(100 * 2 ** i);
      }
      const n = sockets.length;
      sockets.at(-1)!.refuse(); // Now waiting 30 s (0.5 × 60 s cap).
      await vi.advanceTimersByTimeAsync(1000);
      expect(sockets.length).toBe(n);
      target.dispatchEvent(new Event("online"));
      await vi.advanceTimersByTimeAsync(100);
      expect(sockets.length).toBe(n + 1);
      // The same by hand (React Native): chat.wake(), once the backoff has grown again.
      for (let i = 0; i < 10; i++) {
        sockets.at(-1)!.refuse();
        await vi.advanceTimersByTimeAsync(100 * 2 ** i);
      }
      const m = sockets.length;
      sockets.at(-1)!.refuse();
      await vi.advanceTimersByTimeAsync(1000);
      expect(sockets.length).toBe(m);
      chat.wake();
      await vi.advanceTimersByTimeAsync(100);
      expect(sockets.length).toBe(m + 1);
      await chat.close();
    } finally {
      [g.addEventListener, g.removeEventListener] = saved;
    }
  });

  it("on `offline` an open socket is pinged at once and dropped when the pong does not come", async () => {
    const target = new EventTarget();
    const g = globalThis as unknown as { addEventListener: unknown; removeEventListener: unknown };
    const saved = [g.addEventListener, g.removeEventListener];
    g.addEventListener = target.addEventListener.bind(target);
    g.removeEventListener = target.removeEventListener.bind(target);
    try {
      const { chat, sockets } = makeClient({ pingIntervalMs: 60_000, pongTimeoutMs: 2000 });
      const room = chat.room("general");
      await settle();
      sockets[0].open();
      sockets[0].receive(roomState(0));
      target.dispatchEvent(new Event("offline"));
      expect(sockets[0].sent.at(-1)).toBe('{"type":"ping"}');
      await vi.advanceTimersByTimeAsync(2000);
      expect(sockets[0].closedWith?.reason).toBe("heartbeat timeout");
      expect(room.state).toBe("reconnecting");
      await chat.close();
    } finally {
      [g.addEventListener, g.removeEventListener] = saved;
    }
  });

  it("unpacks batch frames in order and ignores unknown frame types and garbage", async () => {
    const { chat, sockets } = makeClient();
    const room = chat.room("general");
    const seen: string[] = [];
    const other: string[] = [];
    room.on("system", (f) => seen.push(`${f.event}:${f.userId}`));
    room.on("typing", (f) => seen.push(`typing:${f.userId}`));
    room.on("frame", (f) => other.push(f.type));
    await settle();
    sockets[0].open();
    sockets[0].receive(roomState(0));
    sockets[0].receiveRaw("not json");
    sockets[0].receiveRaw(new ArrayBuffer(4));
    sockets[0].receive({ type: "from_the_future", x: 1 });
    sockets[0].receive({
      type: "batch",
      frames: [
        { type: "system", roomId: "general", event: "join", userId: "a", name: "A", at: 1 },
        { type: "brand_new_frame" },
        { type: "typing", userId: "a", on: true, roomId: "general" },
        { type: "system", roomId: "general", event: "leave", userId: "a", name: "A", at: 2 },
      ],
    });
    expect(seen).toEqual(["join:a", "typing:a", "leave:a"]);
    expect(other).toEqual(["from_the_future", "brand_new_frame"]);
    expect(room.state).toBe("open");
    await chat.close();
  });
});
