/** Helpers for the room tests: rooms in D1, socket close events, and waiting on the room's own state. */
import { env } from "cloudflare:test";
import type { ChatRoom } from "../../src/objects/chat-room";
import { roomStub } from "../../src/objects/stubs";
import type { ServerMessage } from "../../src/protocol";
import { connectWs, type TestSocket } from "./index";

/** Inserts a room into D1 (what POST /api/chat/rooms does, without its per-user limit). */
export async function createRoom(id: string, opts: { name?: string; category?: string } = {}): Promise<string> {
  await env.DB.prepare(
    "INSERT INTO rooms (id, name, category, description, created_by, created_at) VALUES (?, ?, ?, '', 'test', ?)",
  )
    .bind(id, opts.name ?? id, opts.category ?? "general", Date.now())
    .run();
  return id;
}

/** The room's Durable Object stub. */
export function stubOf(roomId: string): DurableObjectStub<ChatRoom> {
  return roomStub(env, roomId);
}

/** A socket joined to `roomId`, after its `room_state` arrived. */
export async function joined(user: string, roomId: string, opts: { since?: number; name?: string } = {}): Promise<TestSocket> {
  const s = await connectWs(user, `/api/chat/rooms/${roomId}/ws`, { name: opts.name });
  s.send({ type: "join_room", since: opts.since });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}

/** Resolves with the close event's code. */
export function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.addEventListener("close", (ev) => resolve(ev.code), { once: true }));
}

/** Polls the room until `pred` holds for its snapshot (for effects of a client close, which has no reply). */
export async function untilRoom(
  roomId: string,
  pred: (snap: Awaited<ReturnType<ChatRoom["snapshot"]>>) => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  do {
    if (pred(await stubOf(roomId).snapshot())) return;
    await new Promise((r) => setTimeout(r, 10));
  } while (Date.now() < deadline);
  throw new Error(`room ${roomId} never reached the expected state: ${JSON.stringify(await stubOf(roomId).snapshot())}`);
}

/** The room messages (type `message`) a socket received, in order. */
export function messagesOf(s: TestSocket): Extract<ServerMessage, { type: "message" }>["message"][] {
  return s.frames.flatMap((f) => (f.type === "message" ? [f.message] : []));
}

/**
 * Every room message a socket received, in order: `message` frames, and its own sends, which come
 * back as the (non-duplicate) `ack` in the message's place instead of a `message` frame.
 */
export function deliveredOf(s: TestSocket): Extract<ServerMessage, { type: "message" }>["message"][] {
  return s.frames.flatMap((f) => {
    if (f.type === "message") return [f.message];
    if (f.type === "ack" && f.message !== undefined && "roomId" in f.message && f.duplicate !== true) return [f.message];
    return [];
  });
}

/** A predicate for the frame that delivers message `seq` to a socket (a `message`, or the sender's own `ack`). */
export function delivers(seq: number): (m: ServerMessage) => boolean {
  return (m) => (m.type === "message" && m.message.seq === seq) || (m.type === "ack" && m.message?.seq === seq && m.duplicate !== true);
}

/** System frames a socket received, as "join:alice" / "leave:alice". */
export function systemOf(s: TestSocket): string[] {
  return s.frames.flatMap((f) => (f.type === "system" ? [`${f.event}:${f.userId}`] : []));
}

/** Sends a message and resolves with its ack. */
export async function sendText(s: TestSocket, clientMsgId: string, text = clientMsgId): Promise<Extract<ServerMessage, { type: "ack" }>> {
  s.send({ type: "send_room_message", id: clientMsgId, clientMsgId, text });
  return s.waitFor((m) => m.type === "ack" && m.id === clientMsgId);
}
