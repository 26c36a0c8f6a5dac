/**
 * The rate limit is per user inside each object (room, inbox), kept across reconnects and eviction:
 * a client closed with 1008 that reconnects at once, again and again, gets no fresh burst.
 */
import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { inboxStub } from "../../src/objects/stubs";
import { CLOSE } from "../../src/protocol";
import { connectWs, type TestSocket } from "../helpers";
import { inbox, uid } from "../helpers/inbox";
import { closed, createRoom, stubOf } from "../helpers/rooms";

const BURST = 20;
const REFILL_PER_SEC = 10;
const ROUNDS = 6;

/** Floods `s` with frames until the server closes it; returns the close code. */
async function floodUntilClosed(s: TestSocket, frame: (i: number) => unknown): Promise<number> {
  let isClosed = false;
  const code = closed(s.ws).then((c) => ((isClosed = true), c));
  const deadline = Date.now() + 10_000;
  let i = 0;
  while (!isClosed) {
    if (Date.now() > deadline) throw new Error(`still open after ${i} frames`);
    for (let k = 0; k < 100; k++) s.send(frame(i++));
    await new Promise((r) => setTimeout(r, 5));
  }
  return code;
}

/** What one bucket allows between `start` and `end`: the burst plus the refill. */
const allowance = (start: number, end: number) => BURST + Math.ceil(((end - start) * REFILL_PER_SEC) / 1000);

describe("per-user rate limit", () => {
  it("room: flooding to 1008 and reconnecting at once, eviction included, stores no more than one bucket allows", async () => {
    const room = await createRoom("user-bucket");
    const user = uid("flooder");
    const start = Date.now();
    let end = start;
    for (let round = 0; round < ROUNDS; round++) {
      if (round === ROUNDS / 2) await evictDurableObject(stubOf(room));
      const s = await connectWs(user, `/api/chat/rooms/${room}/ws`);
      s.send({ type: "join_room" });
      const code = await floodUntilClosed(s, (i) => ({ type: "send_room_message", clientMsgId: `r${round}-${i}`, text: "x" }));
      end = Date.now();
      expect(code).toBe(CLOSE.POLICY);
    }
    const stored = (await stubOf(room).snapshot()).lastSeq;
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThanOrEqual(allowance(start, end));
  });

  it("inbox: the same flood, answered frames counted, stays within one bucket; rate_limited carries the frame's id", async () => {
    const user = uid("flooder");
    const start = Date.now();
    let end = start;
    let answered = 0;
    const refusedIds: unknown[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round === ROUNDS / 2) await evictDurableObject(inboxStub(env, user));
      const s = await inbox(user);
      const code = await floodUntilClosed(s, (i) => ({ type: "ping", id: `p${round}-${i}` }));
      end = Date.now();
      expect(code).toBe(CLOSE.POLICY);
      // A ping with an id is answered by the object at once, so every accepted frame is one pong.
      answered += s.frames.filter((m) => m.type === "pong").length;
      for (const m of s.frames) if (m.type === "error" && m.code === "rate_limited") refusedIds.push(m.id);
    }
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThanOrEqual(allowance(start, end));
    expect(refusedIds.length).toBeGreaterThan(0);
    expect(refusedIds.every((id) => typeof id === "string" && id.startsWith("p"))).toBe(true);
  });
});
