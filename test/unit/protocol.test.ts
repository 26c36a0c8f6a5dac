/** parseClientMessage: every bad frame gets a specific code and message; good frames parse. */
import { describe, expect, it } from "vitest";
import {
  FRAME_MAX_BYTES,
  MEDIA_PER_MESSAGE_MAX,
  parseClientMessage,
  PRESENCE_IDS_PER_FRAME_MAX,
  ServerMessage,
  SYNC_CONVERSATIONS_MAX,
  TEXT_MAX,
} from "../../src/protocol";

const bad = (raw: string | ArrayBuffer) => {
  const r = parseClientMessage(raw);
  if (r.ok) throw new Error(`expected a refusal for ${String(raw).slice(0, 80)}`);
  return r;
};

describe("parseClientMessage", () => {
  it("parses the room frames", () => {
    expect(parseClientMessage('{"type":"join_room","since":4,"id":"j"}')).toEqual({ ok: true, msg: { type: "join_room", since: 4, id: "j" } });
    expect(parseClientMessage('{"type":"leave_room"}')).toEqual({ ok: true, msg: { type: "leave_room" } });
    expect(parseClientMessage('{"type":"typing","on":false}')).toEqual({ ok: true, msg: { type: "typing", on: false } });
    const send = parseClientMessage(JSON.stringify({ type: "send_room_message", id: 3, clientMsgId: "c", text: "hi", replyTo: "m1" }));
    expect(send).toEqual({ ok: true, msg: { type: "send_room_message", id: 3, clientMsgId: "c", text: "hi", replyTo: "m1" } });
    expect(parseClientMessage(JSON.stringify({ type: "send_room_message", clientMsgId: "c", mediaIds: ["m"] })).ok).toBe(true);
    expect(parseClientMessage("x".repeat(0) + JSON.stringify({ type: "send_room_message", clientMsgId: "c", text: "é".repeat(TEXT_MAX) })).ok).toBe(true);
  });

  it("refuses what is not a JSON object", () => {
    expect(bad("not json")).toMatchObject({ code: "bad_request", message: "frame is not valid JSON" });
    expect(bad("[1]")).toMatchObject({ code: "bad_request", message: expect.stringMatching(/JSON object/) });
    expect(bad("null")).toMatchObject({ code: "bad_request" });
    expect(bad('"join_room"')).toMatchObject({ code: "bad_request" });
    expect(bad(new ArrayBuffer(4))).toMatchObject({ code: "bad_request", message: expect.stringMatching(/binary/) });
  });

  it("names an unknown or missing type", () => {
    expect(bad('{"type":"shout","id":"x"}')).toMatchObject({ id: "x", code: "bad_request", message: 'unknown frame type "shout"' });
    expect(bad('{"id":1}')).toMatchObject({ id: 1, code: "bad_request", message: "unknown frame type undefined" });
  });

  it("names the missing or wrong field, and keeps the request id", () => {
    expect(bad('{"type":"send_room_message","id":"r","text":"x"}')).toMatchObject({ id: "r", code: "bad_request", message: expect.stringMatching(/^clientMsgId: /) });
    expect(bad('{"type":"typing","on":"yes"}')).toMatchObject({ code: "bad_request", message: expect.stringMatching(/^on: /) });
    expect(bad('{"type":"join_room","since":1.5}')).toMatchObject({ message: expect.stringMatching(/^since: /) });
    expect(bad('{"type":"join_room","since":-1}')).toMatchObject({ message: expect.stringMatching(/^since: /) });
    expect(bad('{"type":"send_room_message","clientMsgId":"c"}')).toMatchObject({ message: "text: text or mediaIds is required" });
    expect(bad('{"type":"send_room_message","clientMsgId":"c","text":" \\n "}')).toMatchObject({ message: "text: text or mediaIds is required" });
    expect(bad(JSON.stringify({ type: "send_room_message", clientMsgId: "c", mediaIds: Array(MEDIA_PER_MESSAGE_MAX + 1).fill("m") }))).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/^mediaIds: /),
    });
    expect(bad(JSON.stringify({ type: "send_room_message", clientMsgId: "c".repeat(65), text: "x" }))).toMatchObject({ message: expect.stringMatching(/^clientMsgId: /) });
  });

  it("reports text over the limit and frames over the size limit as too_large", () => {
    expect(bad(JSON.stringify({ type: "send_room_message", id: "t", clientMsgId: "c", text: "x".repeat(TEXT_MAX + 1) }))).toMatchObject({
      id: "t",
      code: "too_large",
      message: `text is longer than ${TEXT_MAX} characters`,
    });
    const huge = JSON.stringify({ type: "send_room_message", clientMsgId: "c", text: "x".repeat(FRAME_MAX_BYTES) });
    expect(bad(huge)).toMatchObject({ code: "too_large", message: expect.stringMatching(/bytes; the limit is/) });
    // Bytes, not characters: 6000 three-byte characters are over 16 KiB.
    expect(bad(JSON.stringify({ type: "typing", on: true, pad: "€".repeat(6000) }))).toMatchObject({ code: "too_large" });
    expect(bad(new ArrayBuffer(FRAME_MAX_BYTES + 1))).toMatchObject({ code: "too_large" });
  });
});

describe("inbox frame limits", () => {
  it("caps presence ids per frame at 100 (D1 binds at most 100 parameters per query)", () => {
    expect(PRESENCE_IDS_PER_FRAME_MAX).toBe(100);
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);
    for (const type of ["subscribe_presence", "unsubscribe_presence"]) {
      expect(parseClientMessage(JSON.stringify({ type, userIds: ids(100) })).ok).toBe(true);
      expect(bad(JSON.stringify({ type, id: "s", userIds: ids(101) }))).toMatchObject({ id: "s", code: "bad_request", message: expect.stringMatching(/^userIds: /) });
    }
  });

  it("caps the conversations of one sync at 100", () => {
    const since = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`dm_${i.toString(16).padStart(32, "0")}`, i]));
    expect(parseClientMessage(JSON.stringify({ type: "sync", since: since(SYNC_CONVERSATIONS_MAX) })).ok).toBe(true);
    expect(bad(JSON.stringify({ type: "sync", id: 9, since: since(SYNC_CONVERSATIONS_MAX + 1) }))).toMatchObject({
      id: 9,
      code: "bad_request",
      message: expect.stringMatching(/^since: at most 100 conversations/),
    });
  });
});

describe("server frames", () => {
  it("accept a batch of frames and refuse a batch inside a batch", () => {
    const message = { id: "m", roomId: "r", seq: 1, userId: "u", userName: "U", clientMsgId: "c", text: "hi", createdAt: 1 };
    expect(ServerMessage.safeParse({ type: "batch", frames: [{ type: "message", message }, { type: "pong" }] }).success).toBe(true);
    expect(ServerMessage.safeParse({ type: "batch", frames: [{ type: "batch", frames: [] }] }).success).toBe(false);
  });

  it("accept a sync ack that says more remains", () => {
    expect(ServerMessage.parse({ type: "ack", id: "s", more: true })).toEqual({ type: "ack", id: "s", more: true });
  });
});
