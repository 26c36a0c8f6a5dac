/**
 * Which room messages reference which media (`message_media`), so that deleting a message releases
 * exactly the media no live message references any more (the same upload may be posted twice in one
 * room: `claimMedia` lets its owner reuse media already bound here).
 *
 * Releases are durable: a delete queues the ids in `media_release` in the same step as the tombstone;
 * `flush` unbinds them in D1 (`releaseMedia`) and is retried from the alarm until D1 confirms. Media
 * sends (claim, then append) and flushes run one at a time (`serialize`), and a flush checks again that
 * nothing references an id right before it unbinds it: a send reusing the media cannot slip between
 * the check and the unbinding, and cannot append a message whose media was unbound after its claim.
 */
import { releaseMedia } from "../../media/claim";
import type { MediaDescriptor } from "../../protocol";

/** Ids one flush unbinds at most (D1 binds at most 100 parameters per statement). */
const FLUSH_MAX = 90;

/** The media references of one room. */
export class RoomMediaRefs {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
    private readonly roomId: string,
  ) {}

  /** Runs `fn` after every earlier serialized step settled (media sends and flushes). */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Records the media a new message carries. */
  add(seq: number, media: readonly MediaDescriptor[] | undefined): void {
    for (const m of media ?? []) this.sql.exec("INSERT OR IGNORE INTO message_media (media_id, seq) VALUES (?, ?)", m.id, seq);
  }

  /** A message went: forgets its references and queues the media nothing references any more. Returns how many were queued. */
  drop(seq: number, ownerId: string, media: readonly MediaDescriptor[] | undefined, now: number): number {
    if (!media || media.length === 0) return 0;
    for (const m of media) this.sql.exec("DELETE FROM message_media WHERE media_id = ? AND seq = ?", m.id, seq);
    let queued = 0;
    for (const m of media) {
      if (this.referenced(m.id)) continue;
      // REPLACE gives the row a new rowid: a flush already under way (which read the old one) leaves it queued.
      this.sql.exec("INSERT OR REPLACE INTO media_release (media_id, owner_id, at) VALUES (?, ?, ?)", m.id, ownerId, now);
      queued++;
    }
    return queued;
  }

  /** True while releases are queued (the alarm retries them). */
  pending(): boolean {
    return this.sql.exec("SELECT 1 FROM media_release LIMIT 1").toArray().length > 0;
  }

  /** Unbinds the queued media in D1 (serialized with media sends). Throws when D1 fails; the queue stays. */
  flush(): Promise<number> {
    return this.serialize(async () => {
      const rows = this.sql.exec<{ rowid: number; media_id: string }>("SELECT rowid, media_id FROM media_release LIMIT ?", FLUSH_MAX).toArray();
      // Posted again since the delete: no longer to release.
      const free = rows.map((r) => r.media_id).filter((id) => !this.referenced(id));
      if (free.length > 0) await releaseMedia(this.env, free, { kind: "room", roomId: this.roomId });
      for (const r of rows) this.sql.exec("DELETE FROM media_release WHERE rowid = ?", r.rowid);
      return free.length;
    });
  }

  /**
   * The room is being deleted: unbinds every media id its messages carried or its queue held, so the
   * uploads become their owners' alone again and the sweep removes them. Throws when D1 fails.
   */
  async releaseAll(): Promise<number> {
    const ids = this.sql
      .exec<{ media_id: string }>("SELECT media_id FROM message_media UNION SELECT media_id FROM media_release")
      .toArray()
      .map((r) => r.media_id);
    for (let i = 0; i < ids.length; i += FLUSH_MAX) {
      await releaseMedia(this.env, ids.slice(i, i + FLUSH_MAX), { kind: "room", roomId: this.roomId });
    }
    return ids.length;
  }

  private referenced(mediaId: string): boolean {
    return this.sql.exec("SELECT 1 FROM message_media WHERE media_id = ? LIMIT 1", mediaId).toArray().length > 0;
  }
}
