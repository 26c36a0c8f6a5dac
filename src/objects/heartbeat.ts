/**
 * The heartbeat rule of both objects' sockets (applied by `socket-host.ts`): a socket is expired when
 * silent (no frame, no auto-answered ping) for more than the timeout. Pure: no Cloudflare imports.
 */
import type { BaseSession } from "./session";

/** The fields the rule reads. */
type Seen = Pick<BaseSession, "lastSeenAt" | "connectedAt">;

/**
 * The last sign of life of a socket: its last frame, the runtime's last auto-answered ping
 * (`getWebSocketAutoResponseTimestamp`, which does not wake the object and so is not in the
 * attachment), or the connection itself.
 */
export function lastActivity(s: Seen, autoResponseAt: number | null): number {
  return Math.max(s.lastSeenAt, s.connectedAt, autoResponseAt ?? 0);
}

/** True when a socket has been silent for longer than `timeoutMs` at `now`. */
export function isExpired(
  s: Seen,
  autoResponseAt: number | null,
  now: number,
  timeoutMs: number,
): boolean {
  return now - lastActivity(s, autoResponseAt) > timeoutMs;
}

/**
 * Splits sockets into the expired ones and the time the next sweep is due (the earliest moment a
 * live socket could expire), or null when no socket is left to watch.
 */
export function sweep<T extends Seen>(
  items: Iterable<{ session: T; autoResponseAt: number | null }>,
  now: number,
  timeoutMs: number,
): { expired: T[]; nextAt: number | null } {
  const expired: T[] = [];
  let nextAt: number | null = null;
  for (const { session, autoResponseAt } of items) {
    if (isExpired(session, autoResponseAt, now, timeoutMs)) {
      expired.push(session);
      continue;
    }
    // +1: `isExpired` is strict, so the socket is expired one millisecond after the deadline.
    const due = lastActivity(session, autoResponseAt) + timeoutMs + 1;
    if (nextAt === null || due < nextAt) nextAt = due;
  }
  return { expired, nextAt };
}
