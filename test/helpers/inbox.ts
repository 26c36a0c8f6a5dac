/** Helpers for inbox tests: unique users, provisioning, inbox sockets. */
import type { DmMessage, ServerMessage } from "../../src/protocol";
import { api, connectWs } from "./index";
import type { TestSocket } from "./index";

let counter = 0;

/** A user id unique to this test run, so tests sharing storage never see each other's data. */
export function uid(name: string): string {
  counter += 1;
  return `${name}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Provisions users in D1 (the auth middleware does it on any request). */
export async function provision(...users: string[]): Promise<void> {
  for (const u of users) {
    const res = await api(u, "/api/me");
    if (res.status !== 200) throw new Error(`provision ${u}: ${res.status}`);
  }
}

/** Opens the user's inbox socket. */
export function inbox(user: string): Promise<TestSocket> {
  return connectWs(user, "/api/chat/ws");
}

export const isDm = (from?: string) => (m: ServerMessage) => m.type === "dm" && (from === undefined || m.message.from === from);
export const isAck = (id: string | number) => (m: ServerMessage) => m.type === "ack" && m.id === id;
export const isError = (id: string | number) => (m: ServerMessage) => m.type === "error" && m.id === id;

/** Sends a DM and waits for its ack or error. */
export async function sendDm(
  sock: TestSocket,
  to: string,
  text: string,
  opts: { clientMsgId?: string; id?: string } = {},
): Promise<Extract<ServerMessage, { type: "ack" | "error" }>> {
  const id = opts.id ?? crypto.randomUUID();
  sock.send({ type: "send_dm", id, to, clientMsgId: opts.clientMsgId ?? crypto.randomUUID(), text });
  return sock.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

/** The stored message of a successful send's ack. */
export function ackedMessage(frame: ServerMessage): DmMessage {
  if (frame.type !== "ack" || !frame.message || !("conversationId" in frame.message)) {
    throw new Error(`expected an ack with a DM, got ${JSON.stringify(frame)}`);
  }
  return frame.message;
}

/** Waits until the socket's frames have been flushed: a ping with an id round-trips through the object. */
export async function roundTrip(sock: TestSocket): Promise<void> {
  const id = `rt-${crypto.randomUUID()}`;
  sock.send({ type: "ping", id });
  await sock.waitFor((m) => m.type === "pong" && m.id === id);
}

/** Sends any frame with a fresh `id` and waits for its ack or error. */
export async function request(sock: TestSocket, frame: Record<string, unknown>): Promise<Extract<ServerMessage, { type: "ack" | "error" }>> {
  const id = crypto.randomUUID();
  sock.send({ ...frame, id });
  return sock.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

/** As `request`, waiting out `rate_limited` refusals (the user's bucket allows 20 at once, then 10/s). */
export async function requestPaced(sock: TestSocket, frame: Record<string, unknown>): Promise<Extract<ServerMessage, { type: "ack" | "error" }>> {
  for (;;) {
    const r = await request(sock, frame);
    if (r.type !== "error" || r.code !== "rate_limited") return r;
    await new Promise((res) => setTimeout(res, r.retryAfterMs ?? 100));
  }
}
