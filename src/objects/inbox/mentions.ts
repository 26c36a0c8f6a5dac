/**
 * Mentions from rooms: a room whose message mentions this user, while the user has no socket joined
 * there, tells this inbox, which shows a `mention` frame on every open socket of the user. Never from
 * someone the user blocks (the block list is this inbox's own). Nothing is stored: the room keeps the
 * mention, and counts it in `GET /api/chat/rooms?joined=true` until the user reads past it.
 */
import type { ServerFrameMessage } from "../../protocol";
import type { InboxContext } from "./context";

/** A `mention` frame, as the room sends it. */
export type MentionFrame = Extract<ServerFrameMessage, { type: "mention" }>;

/** What became of a mention. */
export type MentionResult = { delivered: number } | { blocked: true };

/** The user's incoming room mentions. */
export class InboxMentions {
  constructor(private readonly c: InboxContext) {}

  /** Shows the mention on the user's open sockets, unless the user blocks its author. */
  receiveMention(frame: MentionFrame): MentionResult {
    if (frame.from === this.c.owner) return { delivered: 0 };
    if (this.c.blocks.isBlocking(frame.from)) return { blocked: true };
    return { delivered: this.c.broadcast(frame) };
  }
}
