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
  /** Epoch ms of the last frame received (auto-answered pings are tracked by the runtime, not here). */
  lastSeenAt: number;
  /**
   * The user's rate-limit bucket as it was after this socket's last frame: a copy of the per-user
   * bucket (`UserBuckets`), kept here so the bucket survives an eviction without a storage write per frame.
   */
  bucket: BucketState;
  /** Frames refused in a row while the bucket was empty; reset by an accepted frame. */
  strikes: number;
  /**
   * Epoch ms the server closed this socket (heartbeat sweep, abuse, kick). A client that never
   * completes the closing handshake keeps the socket in `ctx.getWebSockets()`, and after a wake-up
   * the runtime may even report it `OPEN`: a socket with this mark never counts again (presence,
   * caps, fan-out), and the sweep closes it again while it is still there.
   */
  closingAt?: number;
}

/** Reads a socket's attachment. */
export function getSession<T extends BaseSession>(ws: WebSocket): T | null {
  return (ws.deserializeAttachment() as T | null) ?? null;
}

/** Writes a socket's attachment (at most 16 KiB serialized, per the runtime's limit). */
export function setSession<T extends BaseSession>(ws: WebSocket, session: T): void {
  ws.serializeAttachment(session);
}

/** True for a socket the server has closed (see `BaseSession.closingAt`), whatever its `readyState`. */
export function isClosing(session: Pick<BaseSession, "closingAt"> | null): boolean {
  return session?.closingAt !== undefined;
}
