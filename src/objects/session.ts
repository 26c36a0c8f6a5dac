/**
 * The typed WebSocket attachment: everything about a connection that must outlive hibernation.
 * In-memory maps in the objects are rebuilt from these on wake-up.
 */
import type { BucketState } from "./rate-limit";

/** State common to room and inbox connections. */
export interface BaseSession {
  /** Connection id, unique per socket. */
  connId: string;
  userId: string;
  name: string;
  /** Epoch ms the socket was accepted. */
  connectedAt: number;
  /** Rate-limit bucket. */
  bucket: BucketState;
  /** Frames refused in a row while the bucket was empty; reset by an accepted frame. */
  strikes: number;
}

/** Reads a socket's attachment. */
export function getSession<T extends BaseSession>(ws: WebSocket): T | null {
  return (ws.deserializeAttachment() as T | null) ?? null;
}

/** Writes a socket's attachment (at most 16 KiB serialized, per the runtime's limit). */
export function setSession<T extends BaseSession>(ws: WebSocket, session: T): void {
  ws.serializeAttachment(session);
}
