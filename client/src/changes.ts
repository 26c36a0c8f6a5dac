import type { DmMessage, RoomMessage, ServerFrame } from "./wire.js";

/** A `message_updated` frame: the whole message as it now is (an edit; a reaction change replayed on resume). */
export type MessageUpdated = Extract<ServerFrame, { type: "message_updated" }>;
/** A `message_deleted` frame: the message is a tombstone now (it keeps its seq). */
export type MessageDeleted = Extract<ServerFrame, { type: "message_deleted" }>;
/** A `reaction` frame: one user's emoji on or off a message, and the emoji's count after it. */
export type Reaction = Extract<ServerFrame, { type: "reaction" }>;
/** A `mention` frame (inbox): the user was mentioned in a room they are not in. */
export type Mention = Extract<ServerFrame, { type: "mention" }>;
/** A change to a stored message. */
export type Change = MessageUpdated | MessageDeleted | Reaction;
/** The `reload` event: the server could not replay every change missed; reload the history shown. */
export interface Reload {
  /** Where it happened: the room, or (inbox) undefined. */
  roomId?: string;
  reason: "changes_truncated";
}

/** The event each change frame is emitted as. */
export const CHANGE_EVENT = { message_updated: "updated", message_deleted: "deleted", reaction: "reaction" } as const;

/**
 * The change an ack stands for: the server answers the changer's socket with an `ack` carrying the
 * message as it now is, in the place of the broadcast frame the others get.
 */
export function ackChange(m: RoomMessage | DmMessage): Change {
  return m.deleted
    ? { type: "message_deleted", messageId: m.id, seq: m.seq, deletedBy: m.deletedBy ?? "", rev: m.rev, ...("roomId" in m ? { roomId: m.roomId } : { conversationId: m.conversationId }) }
    : { type: "message_updated", message: m };
}

/** The id and rev of the message a change is about. */
export function changeTarget(c: Change): { id: string; rev: number | undefined } {
  return c.type === "message_updated" ? { id: c.message.id, rev: c.message.rev } : { id: c.messageId, rev: c.rev };
}

/**
 * Folds a change into a copy of `m` (for an application that keeps a list of messages, and for the
 * messages the SDK still holds). `me`: the reader's user id, to keep `myReactions` right on reactions.
 * A change to another message returns `m` itself.
 */
export function applyChange<M extends RoomMessage | DmMessage>(m: M, c: Change, me?: string): M {
  const { id, rev } = changeTarget(c);
  if (id !== m.id) return m;
  if (c.type === "message_updated") {
    // A live copy is the same for every reader and carries no `myReactions`: keep the reader's own.
    return { ...(c.message as M), myReactions: c.message.myReactions ?? m.myReactions };
  }
  if (c.type === "message_deleted") {
    const { text: _t, media: _m, ...rest } = m;
    return { ...rest, deleted: true, deletedBy: c.deletedBy, rev: rev ?? m.rev } as M;
  }
  const reactions = { ...m.reactions };
  if (c.count > 0) reactions[c.emoji] = c.count;
  else delete reactions[c.emoji];
  let mine = m.myReactions;
  if (me !== undefined && c.userId === me) {
    mine = (mine ?? []).filter((e) => e !== c.emoji);
    if (c.on) mine.push(c.emoji);
  }
  return { ...m, reactions: Object.keys(reactions).length ? reactions : undefined, myReactions: mine, rev: rev ?? m.rev };
}

/** How many messages' last known rev a socket remembers (for dropping repeated changes). */
const REMEMBERED = 5000;

/**
 * The change positions (`rev`) of one room or inbox. `last` is the highest rev up to which every change
 * reached this client: what resume passes as `sinceRev`. It rises with each frame while the stream is
 * live, and at the end of a complete join or sync to the highest rev the catch-up brought, never in the
 * middle of one (a replay is not in rev order: a socket that drops mid-replay must ask again from
 * before it). Per message, the last rev applied: a change at or below it is a repeat (a replay
 * overlapping the live stream) or older than what is known, and is dropped.
 */
export class Revs {
  last: number | undefined;
  private max: number | undefined;
  private byMsg = new Map<string, number>();

  /** Notes a rev seen; returns false when the change is a repeat (or older) for that message. */
  note(id: string | undefined, rev: number | undefined, live: boolean): boolean {
    if (rev === undefined) return true;
    if (this.max === undefined || rev > this.max) this.max = rev;
    if (live) this.commit();
    if (id === undefined) return true;
    const prev = this.byMsg.get(id);
    if (prev !== undefined && rev <= prev) return false;
    this.byMsg.delete(id);
    this.byMsg.set(id, rev);
    if (this.byMsg.size > REMEMBERED) this.byMsg.delete(this.byMsg.keys().next().value as string);
    return true;
  }

  /** A catch-up completed: everything up to the highest rev it brought has reached the client. */
  commit(rev?: number): void {
    if (rev !== undefined && (this.max === undefined || rev > this.max)) this.max = rev;
    if (this.max !== undefined && (this.last === undefined || this.max > this.last)) this.last = this.max;
  }

  /** A catch-up starts (or the socket dropped): forget what an unfinished one brought. */
  reset(): void {
    this.max = this.last;
  }
}
