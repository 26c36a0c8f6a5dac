/**
 * The reply rule of both sockets (docs/protocol.md): every frame with an `id` gets exactly one `ack`
 * or `error` carrying that `id` (`pong` for a `ping`), refusals by the rate limit included.
 */
import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../../src/protocol";
import { connectWs, type TestSocket } from "../helpers";
import { inbox, provision, uid } from "../helpers/inbox";
import { createRoom } from "../helpers/rooms";

/** The answers to `id`: acks, errors and pongs carrying it. */
const answersTo = (s: TestSocket, id: string) =>
  s.frames.filter((m: ServerMessage) => (m.type === "ack" || m.type === "error" || m.type === "pong") && m.id === id);

/** Sends each frame with a fresh id, then a flood past the burst, and checks every id got exactly one answer. */
async function checkRule(s: TestSocket, frames: Record<string, unknown>[], flood: () => Record<string, unknown>): Promise<void> {
  const ids: string[] = [];
  frames.forEach((f, i) => {
    const id = `f${i}`;
    ids.push(id);
    s.send({ ...f, id });
  });
  // A burst is 20 frames: most of these are refused, each with an error carrying its id.
  for (let i = 0; i < 40; i++) {
    const id = `flood${i}`;
    ids.push(id);
    s.send({ ...flood(), id });
  }
  for (const id of ids) await s.waitFor((m) => (m.type === "ack" || m.type === "error" || m.type === "pong") && m.id === id);
  // A last ping, repeated until the bucket lets it through: everything before it has been answered.
  for (let k = 0; ; k++) {
    s.send({ type: "ping", id: `last${k}` });
    const answer = await s.waitFor((m) => (m.type === "pong" || m.type === "error") && m.id === `last${k}`);
    if (answer.type === "pong") break;
    await new Promise((r) => setTimeout(r, answer.type === "error" ? (answer.retryAfterMs ?? 100) : 100));
  }
  for (const id of ids) expect(answersTo(s, id), `answers to ${id}`).toHaveLength(1);
  const refused = s.frames.filter((m) => m.type === "error" && m.code === "rate_limited");
  expect(refused.length).toBeGreaterThan(0);
  for (const m of refused) expect(m.type === "error" && typeof m.id).toBe("string");
}

describe("the reply rule", () => {
  it("room socket", async () => {
    const room = await createRoom("reply-rule");
    const user = uid("alice");
    const s = await connectWs(user, `/api/chat/rooms/${room}/ws`);
    await checkRule(
      s,
      [
        { type: "typing", on: true }, // not joined: error
        { type: "send_room_message", clientMsgId: "early", text: "x" }, // not joined: error
        { type: "join_room" },
        { type: "send_room_message", clientMsgId: "m1", text: "hello" },
        { type: "send_room_message", clientMsgId: "m1", text: "hello" }, // duplicate: the first ack again
        { type: "send_room_message", clientMsgId: "m2", text: "re", replyTo: "nope" }, // not_found
        { type: "typing", on: true },
        { type: "ping" },
        { type: "sync", since: {} }, // inbox frame: error
        { type: "no_such_type" },
        { type: "send_room_message", clientMsgId: 5 }, // bad field
        { type: "leave_room" },
        { type: "leave_room" }, // not joined any more: still answered
      ],
      () => ({ type: "typing", on: true }),
    );
    s.close();
  });

  it("inbox socket", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const s = await inbox(alice);
    await checkRule(
      s,
      [
        { type: "send_dm", to: bob, clientMsgId: "d1", text: "hi" },
        { type: "send_dm", to: bob, clientMsgId: "d1", text: "hi" }, // duplicate
        { type: "send_dm", to: alice, clientMsgId: "d2", text: "me" }, // to oneself: error
        { type: "mark_read", conversationId: "dm_00000000000000000000000000000000", seq: 1 }, // not_found
        { type: "typing", on: true }, // no conversationId: error
        { type: "presence", status: "away" },
        { type: "presence" },
        { type: "subscribe_presence", userIds: [bob] },
        { type: "unsubscribe_presence", userIds: [bob] },
        { type: "sync", since: {} },
        { type: "ping" },
        { type: "join_room" }, // room frame: error
        { type: "no_such_type" },
        { type: "send_dm", to: bob }, // bad field
        { type: "edit_message", conversationId: "dm_00000000000000000000000000000000", messageId: "m", text: "x" }, // not_found
        { type: "delete_message", messageId: "m" }, // no conversationId: error
        { type: "react", conversationId: "dm_00000000000000000000000000000000", messageId: "m", emoji: "👍", on: true }, // not_found
      ],
      () => ({ type: "presence" }),
    );
    s.close();
  });
});
