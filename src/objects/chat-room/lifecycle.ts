/**
 * The message lifecycle in a room: `edit_message`, `delete_message`, `react` and `mark_read` on the
 * room socket, and the `mention` sent to the inbox of a mentioned user who is not in the room.
 *
 * Every change to a message takes the room's next `rev` and stores it on the message row
 * (docs/protocol.md "Resume covers changes"); its live frame (`message_updated`, `message_deleted`,
 * `reaction`) carries that rev and goes through the room's fan-out like a message, and the changer's
 * `ack` (with the message as it now is, `myReactions` included) takes the frame's place in the
 * changer's stream, so it never overtakes frames published before it. A change that changes nothing
 * (the same text again, a reaction already there, a message already deleted) takes no rev and is
 * acknowledged with the message as it is. Refusals change nothing: `forbidden` (not joined, not the
 * author), `not_found` (no such message, or a tombstone), `too_large` (a new emoji beyond
 * REACTIONS_DISTINCT_MAX).
 */
import { inArray, eq } from "drizzle-orm";
import { chunks, D1_PARAMS_MAX, db, upsertUsersStatements } from "../../db/queries";
import { roomJoins, rooms, users } from "../../db/schema";
import type { ClientMessage, RoomMessage, ServerFrameMessage, ServerMessage } from "../../protocol";
import type { Fanout } from "../fanout";
import { inboxStub } from "../stubs";
import type { MentionFrame } from "../inbox/mentions";
import type { RoomMediaRefs } from "./media-refs";
import type { MessageLog } from "./message-log";
import type { RoomSession } from "./presence";
import type { RoomReactions } from "./reactions";
import type { RoomReadState } from "./read-state";

/** Characters of a message's text in a `mention` preview. */
export const MENTION_PREVIEW_MAX = 140;
/** How long a first join waits for others to share its writes (lifecycle `noteJoin`). */
export const JOIN_FLUSH_MS = 250;
/** Users remembered as provisioned from this room (noteUser); past it the memory starts afresh. */
const USERS_WRITTEN_MAX = 10_000;
/** D1 join records (and users) written in one flush at most (the next flush, or the alarm, takes the rest). */
const JOIN_RECORDS_MAX = 500;
/** `room_joins` rows per INSERT: three bound parameters each, under D1's 100. */
const JOIN_ROWS_PER_STATEMENT = Math.floor(D1_PARAMS_MAX / 3);

type Frame<T extends ClientMessage["type"]> = Extract<ClientMessage, { type: T }>;

/** What the lifecycle needs of the room. */
export interface LifecycleDeps {
  env: Env;
  ctx: DurableObjectState;
  roomId: string;
  log: MessageLog;
  reactions: RoomReactions;
  readState: RoomReadState;
  media: RoomMediaRefs;
  fanout: Fanout<WebSocket>;
  /** Sends a frame to one socket now (refusals: nothing queued for it can be overtaken by an error). */
  sendError(ws: WebSocket, id: string | number | undefined, code: "forbidden" | "not_found" | "too_large", message: string): void;
  /** Users with a socket joined to the room now. */
  joinedUsers(): Set<string>;
  /** May this user delete other people's messages here? (The owner, moderators, deployment admins.) */
  mayDeleteOthers(userId: string, admin: boolean): boolean;
  /** Records a deletion of someone else's message in the room's audit log. */
  auditDelete(by: string, m: RoomMessage, at: number): void;
  /** May this user be told of a mention here (may read the room: a member of a private room, not banned)? */
  mayBeMentioned(userId: string): boolean;
  /** Moves the room's one alarm earlier to `at` if needed. */
  scheduleAlarm(at: number): void;
  logError(what: string, err: unknown): void;
}

/** Most (message, user) mention notifications remembered, so that edits cannot repeat them. */
const NOTIFIED_MAX = 10_000;

/** Retry delay of a failed media release or join record (from the alarm). */
export const LIFECYCLE_RETRY_MS = 30_000;

/** The lifecycle handlers of one room. */
export class RoomLifecycle {
  /**
   * (message, user) pairs already told of a mention, newest last: an edit that drops a mention and
   * adds it back does not notify again. In memory and bounded (best effort: a wake-up forgets it).
   */
  private readonly notified = new Set<string>();
  /** The pending join flush (noteJoin, noteUser). */
  private joinFlush: ReturnType<typeof setTimeout> | null = null;
  /** Users of this room's sockets to provision in D1 at the next flush (noteUser), by id. */
  private readonly usersToWrite = new Map<string, string>();
  /** Users provisioned from here in this object's lifetime, with the name written (bounded). */
  private readonly usersWritten = new Map<string, string>();

  constructor(private readonly d: LifecycleDeps) {}

  /** `edit_message`: the author replaces the text (and, when given, the mentions). */
  edit(ws: WebSocket, s: RoomSession, msg: Frame<"edit_message">): void {
    const m = this.target(ws, s, msg.id, msg.messageId, "edit");
    if (!m) return;
    if (m.userId !== s.userId) return this.d.sendError(ws, msg.id, "forbidden", "Only the author may edit a message.");
    const mentions = msg.mentions === undefined ? undefined : unique(msg.mentions);
    if (m.text === msg.text && (mentions === undefined || sameList(mentions, m.mentions ?? []))) return this.ackUnchanged(ws, msg.id, m, s.userId);
    const before = new Set(m.mentions ?? []);
    const updated = this.d.log.edit(m, msg.text, mentions, Date.now());
    if (mentions !== undefined) this.d.readState.setMentions(updated);
    this.publish(ws, { type: "message_updated", message: updated }, msg.id, updated, s.userId);
    const added = (updated.mentions ?? []).filter((u) => !before.has(u));
    if (added.length > 0) this.mention(updated, added);
  }

  /** `delete_message`: the author (or whoever `mayDeleteOthers`) leaves a tombstone in the message's place. */
  delete(ws: WebSocket, s: RoomSession, msg: Frame<"delete_message">): void {
    if (!s.joined) return this.d.sendError(ws, msg.id, "forbidden", "Join the room (join_room) before deleting.");
    const m = this.d.log.get(msg.messageId);
    if (!m) return this.d.sendError(ws, msg.id, "not_found", `No message ${msg.messageId} in this room.`);
    if (m.userId !== s.userId && !this.d.mayDeleteOthers(s.userId, s.admin === true)) {
      return this.d.sendError(ws, msg.id, "forbidden", "Only the author or a moderator may delete this message.");
    }
    if (m.deleted === true) return this.ackUnchanged(ws, msg.id, m, s.userId);
    const now = Date.now();
    if (m.userId !== s.userId) this.d.auditDelete(s.userId, m, now);
    const tomb = this.d.log.tombstone(m, s.userId);
    this.d.reactions.clear(m.seq);
    this.d.readState.clearMentions(m.seq);
    const queued = this.d.media.drop(m.seq, m.userId, m.media, now);
    this.publish(
      ws,
      { type: "message_deleted", messageId: m.id, seq: m.seq, deletedBy: s.userId, roomId: this.d.roomId, rev: tomb.rev },
      msg.id,
      tomb,
      s.userId,
    );
    if (queued > 0) this.d.ctx.waitUntil(this.releaseMedia());
  }

  /** `react`: sets or clears one emoji of the caller on a message. */
  react(ws: WebSocket, s: RoomSession, msg: Frame<"react">): void {
    const m = this.target(ws, s, msg.id, msg.messageId, "react to");
    if (!m) return;
    const t = this.d.reactions.toggle(m, s.userId, msg.emoji, msg.on);
    if (!t.ok) return this.d.sendError(ws, msg.id, t.code, t.message);
    if (!t.changed) return this.ackUnchanged(ws, msg.id, m, s.userId);
    const updated = this.d.log.get(m.id)!;
    this.publish(
      ws,
      { type: "reaction", messageId: m.id, emoji: msg.emoji, userId: s.userId, on: msg.on, count: t.count, roomId: this.d.roomId, rev: t.rev },
      msg.id,
      updated,
      s.userId,
    );
  }

  /** `mark_read`: the caller's read position in the room (per user, so every device shares it). */
  markRead(ws: WebSocket, s: RoomSession, msg: Frame<"mark_read">): void {
    if (!s.joined) return this.d.sendError(ws, msg.id, "forbidden", "Join the room (join_room) before marking it read.");
    this.d.readState.markRead(s.userId, msg.seq, this.d.log.lastSeq, Date.now());
    if (msg.id !== undefined) this.d.fanout.unicast(ws, { type: "ack", id: msg.id });
  }

  /**
   * Tells the inboxes of `userIds` (mentioned in `m`) who have no socket joined to the room, off the
   * hot path: the frame's room name and the users' existence come from D1, and each inbox drops a
   * mention from someone its user blocks.
   */
  mention(m: RoomMessage, userIds: readonly string[]): void {
    const present = this.d.joinedUsers();
    const targets = unique(userIds).filter((u) => u !== m.userId && !present.has(u) && !this.notified.has(`${m.seq}:${u}`) && this.d.mayBeMentioned(u));
    if (targets.length === 0) return;
    for (const u of targets) this.notified.add(`${m.seq}:${u}`);
    // Oldest first out (a Set iterates in insertion order).
    for (const key of this.notified) {
      if (this.notified.size <= NOTIFIED_MAX) break;
      this.notified.delete(key);
    }
    this.d.ctx.waitUntil(
      this.deliverMentions(m, targets).catch((err) => this.d.logError("mention delivery failed", err)),
    );
  }

  /**
   * A user's join: the first one is recorded (its read-state row, and in D1) by the next join flush,
   * JOIN_FLUSH_MS later, together with every other join meanwhile; retried until it lands.
   */
  noteJoin(userId: string): void {
    if (this.d.readState.noteJoin(userId, this.d.log.lastSeq, Date.now())) this.scheduleJoinFlush();
  }

  /**
   * The user of a socket just accepted: provisioned in D1 (created, or its name followed) by the next
   * flush, with the first joins. The Worker leaves room sockets' users to the room (app.ts) so that a
   * reconnect storm costs one D1 batch per flush instead of one write per socket.
   */
  noteUser(userId: string, name: string): void {
    if (this.usersWritten.get(userId) === name || this.usersToWrite.get(userId) === name) return;
    this.usersToWrite.set(userId, name);
    this.scheduleJoinFlush();
  }

  private scheduleJoinFlush(): void {
    this.joinFlush ??= setTimeout(() => {
      this.joinFlush = null;
      void this.flushJoins();
    }, JOIN_FLUSH_MS);
  }

  /**
   * Writes the waiting first-join rows (one transaction), then the D1 records still to be written,
   * up to JOIN_RECORDS_MAX of them in one D1 batch. Returns false when D1 failed (the alarm retries).
   */
  async flushJoins(): Promise<boolean> {
    this.d.readState.writePending();
    const todo = this.d.readState.unlisted(JOIN_RECORDS_MAX);
    const people = [...this.usersToWrite].slice(0, JOIN_RECORDS_MAX).map(([id, name]) => ({ id, name }));
    if (todo.length === 0 && people.length === 0) return true;
    for (const u of people) this.usersToWrite.delete(u.id);
    try {
      const d1 = db(this.d.env);
      const rows = todo.map((u) => ({ userId: u.userId, roomId: this.d.roomId, joinedAt: u.joinedAt }));
      // Users first: a join's row never names a user D1 does not have yet.
      const [first, ...rest] = [
        ...upsertUsersStatements(this.d.env, people),
        ...chunks(rows, JOIN_ROWS_PER_STATEMENT).map((c) => d1.insert(roomJoins).values(c).onConflictDoNothing()),
      ];
      await d1.batch([first, ...rest]);
      if (this.usersWritten.size + people.length > USERS_WRITTEN_MAX) this.usersWritten.clear();
      for (const u of people) this.usersWritten.set(u.id, u.name);
      this.d.readState.markListed(todo.map((u) => u.userId));
      // More than one flush takes: the rest goes in the next one.
      if (todo.length === JOIN_RECORDS_MAX || this.usersToWrite.size > 0) this.scheduleJoinFlush();
      return true;
    } catch (err) {
      // Still to write, unless a newer name came meanwhile.
      for (const u of people) if (!this.usersToWrite.has(u.id)) this.usersToWrite.set(u.id, u.name);
      this.d.logError("join records failed; the alarm retries them", err);
      this.d.scheduleAlarm(Date.now() + LIFECYCLE_RETRY_MS);
      return false;
    }
  }

  /** The room is being deleted: no join is written after this. */
  stop(): void {
    if (this.joinFlush !== null) clearTimeout(this.joinFlush);
    this.joinFlush = null;
    this.d.readState.dropPending();
    this.usersToWrite.clear();
  }

  /** From the alarm: retries queued media releases and unrecorded joins. Throws if one still fails. */
  async retry(): Promise<void> {
    let failed: unknown = null;
    if (this.d.media.pending()) {
      try {
        await this.d.media.flush();
      } catch (err) {
        failed = err;
      }
    }
    if ((this.usersToWrite.size > 0 || this.d.readState.unlisted(1).length > 0) && !(await this.flushJoins())) failed ??= new Error("join records failed");
    if (failed) throw failed;
  }

  /** Whether the alarm has lifecycle work left. */
  hasPendingWork(): boolean {
    return this.d.media.pending() || this.usersToWrite.size > 0 || this.d.readState.unlisted(1).length > 0;
  }

  // ------------------------------------------------------------------ internals

  /** The live message a change names, after the caller's checks; null once a refusal was sent. */
  private target(ws: WebSocket, s: RoomSession, id: string | number | undefined, messageId: string, verb: string): RoomMessage | null {
    if (!s.joined) {
      this.d.sendError(ws, id, "forbidden", `Join the room (join_room) before you ${verb} a message.`);
      return null;
    }
    const m = this.d.log.get(messageId);
    if (!m || m.deleted === true) {
      this.d.sendError(ws, id, "not_found", m ? `Message ${messageId} was deleted.` : `No message ${messageId} in this room.`);
      return null;
    }
    return m;
  }

  /** Publishes a change to every joined socket; the changer's socket gets its ack (with the message as it now is) in its place. */
  private publish(ws: WebSocket, frame: ServerFrameMessage, id: string | number | undefined, message: RoomMessage, userId: string): void {
    const ack: ServerMessage = { type: "ack", id, message: this.d.reactions.forReader([message], userId)[0] };
    this.d.fanout.publish(frame, { replaceFor: { socket: ws, frame: ack } });
  }

  /** A change that changed nothing: its ack, behind whatever is queued for the socket. */
  private ackUnchanged(ws: WebSocket, id: string | number | undefined, m: RoomMessage, userId: string): void {
    this.d.fanout.unicast(ws, { type: "ack", id, message: this.d.reactions.forReader([m], userId)[0] });
  }

  private async releaseMedia(): Promise<void> {
    try {
      await this.d.media.flush();
    } catch (err) {
      this.d.logError("media release failed; the alarm retries it", err);
      this.d.scheduleAlarm(Date.now() + LIFECYCLE_RETRY_MS);
    }
  }

  private async deliverMentions(m: RoomMessage, targets: string[]): Promise<void> {
    const [room, known] = await Promise.all([
      db(this.d.env).select({ name: rooms.name }).from(rooms).where(eq(rooms.id, this.d.roomId)).get(),
      db(this.d.env).select({ id: users.id }).from(users).where(inArray(users.id, targets)),
    ]);
    const frame: MentionFrame = {
      type: "mention",
      roomId: this.d.roomId,
      roomName: room?.name ?? this.d.roomId,
      messageId: m.id,
      seq: m.seq,
      from: m.userId,
      fromName: m.userName,
      preview: preview(m),
      at: Date.now(),
    };
    // Unknown ids get nothing: no inbox is created for a user who does not exist.
    const results = await Promise.allSettled(known.map((u) => inboxStub(this.d.env, u.id).receiveMention(frame)));
    for (const r of results) if (r.status === "rejected") this.d.logError("mention RPC failed", r.reason);
  }
}

/** The start of a message's text, for a `mention` preview. */
export function preview(m: Pick<RoomMessage, "text" | "media">): string {
  if (m.text !== undefined && m.text.length > 0) {
    const cps = [...m.text];
    return cps.length > MENTION_PREVIEW_MAX ? `${cps.slice(0, MENTION_PREVIEW_MAX - 1).join("")}…` : m.text;
  }
  return m.media && m.media.length > 0 ? "[media]" : "";
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
