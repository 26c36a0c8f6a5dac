/**
 * Pure room presence: who is present, derived from the sockets' attachments. No Cloudflare imports,
 * so the rules (per user, not per socket) are unit-tested on plain objects.
 */
import type { BaseSession } from "../session";

/** The attachment of a room socket. Everything here survives hibernation. */
export interface RoomSession extends BaseSession {
  /** True between `join_room` and `leave_room` (or the socket's end): the socket receives room frames. */
  joined: boolean;
  /**
   * The room's last seq when this socket joined: it has had every later message live, so a
   * `join_room { since }` while still joined replays only up to here. Absent when not joined (and
   * on attachments written before the field existed).
   */
  liveFrom?: number;
  /** The room's last rev when this socket joined: every later change reached it live (docs/protocol.md "Resume covers changes"). */
  liveFromRev?: number;
  /** The token carried the deployment admin claim (moderation.ts). */
  admin?: true;
}

/** The fields presence needs. */
export type PresenceSession = Pick<RoomSession, "connId" | "userId" | "name" | "joined" | "lastSeenAt" | "connectedAt">;

/** A present user as listed in `room_state.present`. */
export interface PresentUser {
  userId: string;
  name: string;
}

/**
 * Distinct users with at least one joined socket, in the order their first joined socket appears.
 * The name is the one of that socket (the token's current name).
 */
export function presentUsers(sessions: Iterable<PresenceSession>): PresentUser[] {
  const seen = new Map<string, PresentUser>();
  for (const s of sessions) {
    if (s.joined && !seen.has(s.userId)) seen.set(s.userId, { userId: s.userId, name: s.name });
  }
  return [...seen.values()];
}

/** Number of distinct present users: the room's online count. */
export function onlineCount(sessions: Iterable<PresenceSession>): number {
  const users = new Set<string>();
  for (const s of sessions) if (s.joined) users.add(s.userId);
  return users.size;
}

/**
 * True when `userId` has a joined socket other than `exceptConnId`. A join is announced only when
 * this is false before the socket joins; a leave only when it is false after the socket leaves.
 */
export function hasOtherJoined(sessions: Iterable<PresenceSession>, userId: string, exceptConnId: string): boolean {
  for (const s of sessions) {
    if (s.joined && s.userId === userId && s.connId !== exceptConnId) return true;
  }
  return false;
}
