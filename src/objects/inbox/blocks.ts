/**
 * The user's block list (authoritative): blocking hides each one's status from the other at once.
 */
import { HIDDEN } from "../status";
import { inboxStub } from "../stubs";
import type { InboxContext } from "./context";

/** A position in the block list (its order: createdAt DESC, userId ASC). */
export interface BlockPosition {
  createdAt: number;
  userId: string;
}

/** The user's block list. */
export class InboxBlocks {
  constructor(private readonly c: InboxContext) {}

  /** True when this user blocks `userId`. */
  async blocks(userId: string): Promise<boolean> {
    return this.isBlocking(userId);
  }

  /** Up to `limit` entries of the user's block list after `after`, newest first (then by user id). */
  async listBlocks(limit: number, after?: BlockPosition): Promise<{ userId: string; createdAt: number }[]> {
    const rows = after
      ? this.c.sql.exec<{ user_id: string; created_at: number }>(
          "SELECT * FROM blocks WHERE created_at < ? OR (created_at = ? AND user_id > ?) ORDER BY created_at DESC, user_id ASC LIMIT ?",
          after.createdAt,
          after.createdAt,
          after.userId,
          limit,
        )
      : this.c.sql.exec<{ user_id: string; created_at: number }>("SELECT * FROM blocks ORDER BY created_at DESC, user_id ASC LIMIT ?", limit);
    return rows.toArray().map((r) => ({ userId: r.user_id, createdAt: r.created_at }));
  }

  /** Blocks `userId`: hides each one's status from the other at once. `created` is false if already blocked. */
  async block(userId: string): Promise<{ created: boolean; userId: string; createdAt: number }> {
    const existing = this.c.sql
      .exec<{ created_at: number }>("SELECT created_at FROM blocks WHERE user_id = ?", userId)
      .toArray()[0];
    if (existing) return { created: false, userId, createdAt: existing.created_at };
    const now = Date.now();
    this.c.sql.exec("INSERT INTO blocks (user_id, created_at) VALUES (?, ?)", userId, now);
    if (this.c.status.isSubscribedTo(userId)) this.c.status.notePeerStatus(userId, HIDDEN);
    // In the presence queue: a publish already under way may be telling this user the old status,
    // and "hidden" must reach them after it, never before.
    if (this.c.status.hasSubscriber(userId)) await this.c.serialize("presence", () => this.c.status.tell(userId, HIDDEN));
    return { created: true, userId, createdAt: now };
  }

  /** Unblocks `userId` and shows each one's current status to the other again. Returns false if not blocked. */
  async unblock(userId: string): Promise<boolean> {
    if (!this.isBlocking(userId)) return false;
    this.c.sql.exec("DELETE FROM blocks WHERE user_id = ?", userId);
    const work: Promise<unknown>[] = [];
    // In the presence queue, like every push; the status is read when its turn comes.
    if (this.c.status.hasSubscriber(userId)) work.push(this.c.serialize("presence", () => this.c.status.tell(userId, this.c.status.viewFor(userId))));
    if (this.c.status.isSubscribedTo(userId)) {
      work.push(
        inboxStub(this.c.env, userId)
          .statusFor(this.c.owner)
          .then((view) => this.c.status.notePeerStatus(userId, view)),
      );
    }
    await Promise.allSettled(work);
    return true;
  }

  isBlocking(userId: string): boolean {
    return this.c.sql.exec("SELECT 1 FROM blocks WHERE user_id = ?", userId).toArray().length > 0;
  }
}
