import { backoffDelay } from "./backoff.js";
import { CHANGE_EVENT, Revs, ackChange, applyChange, changeTarget, type Change, type MessageDeleted, type Mention, type Reaction } from "./changes.js";
import { Connection, type ConnectionState, type Reply } from "./connection.js";
import { Emitter } from "./emitter.js";
import { ChatError, PERMANENT_CODES, toError } from "./errors.js";
import { Outbox, Requests, type PendingSend, type SocketContext } from "./outbox.js";
import type { Typing } from "./room.js";
import type { DmMessage, ServerFrame, SettableStatus } from "./wire.js";

/** A `notification` frame: a new DM (preview and unread count), for badges and alerts. */
export type DmNotification = Extract<ServerFrame, { type: "notification" }>;
/** A `presence` frame: a watched user's status. */
export type PresenceUpdate = Extract<ServerFrame, { type: "presence" }>;
/** A `read` frame: someone's read position in a conversation, in this user's numbering. */
export type ReadReceipt = Extract<ServerFrame, { type: "read" }>;
/** A `suggestion` frame: rooms near the user, when the area is busy enough. */
export type Suggestion = Extract<ServerFrame, { type: "suggestion" }>;

/** Events of the `Inbox`. */
export interface InboxEvents {
  /**
   * A DM of any conversation, each exactly once and in seq order per conversation: live ones, the ones
   * missed while disconnected (from `sync`), the ones sent from the user's other devices, and this
   * client's own sends once stored.
   */
  dm: DmMessage;
  notification: DmNotification;
  presence: PresenceUpdate;
  read: ReadReceipt;
  typing: Typing;
  suggestion: Suggestion;
  /** A DM was edited (or, on resume, changed while away): the whole message as it now is, in this inbox's copy. */
  updated: DmMessage;
  /** A DM was deleted (both copies): a tombstone keeps its seq. */
  deleted: MessageDeleted;
  /** A reaction on a DM was added or removed. */
  reaction: Reaction;
  /** The user was mentioned in a room they are not in. */
  mention: Mention;
  /** The inbox socket changed state. */
  connection: ConnectionState;
  /** The socket went down (`reason` says why); it reconnects on its own. */
  disconnect: { reason: string };
  /** A frame the inbox does not handle itself (newer than this SDK). */
  frame: ServerFrame;
  /** The server refused something that was not a send. */
  error: ChatError;
}

/** What to send in a DM. */
export interface DmSendInput {
  text?: string;
  mediaIds?: string[];
}

/** A conversation's id and last seq, as `GET /api/chat/dms` lists it. */
export interface ConversationHead {
  id: string;
  lastSeq: number;
  /** Its `rev` gives the starting change position before the first connect. */
  lastMessage?: { rev?: number } | null;
}

/** What the inbox needs from its client. */
export interface InboxContext extends SocketContext {
  /** The user's conversations, most recent first; `all` pages through every one. */
  conversations(all: boolean): Promise<ConversationHead[]>;
}

/** At most this many conversations per `sync` frame (SYNC_CONVERSATIONS_MAX on the server). */
const SYNC_CHUNK = 100;

/**
 * The user's inbox socket (`/api/chat/ws`): DMs, notifications, presence, read receipts. Before its
 * first connect it reads the user's conversations (their last seq is where it starts); after every
 * connect it `sync`s each conversation from the last seq it emitted, following `more: true`, and looks
 * for conversations that began while it was away. DMs that arrive meanwhile, or past a gap, are held
 * and emitted in order once complete.
 */
export class Inbox extends Emitter<InboxEvents> {
  private conn: Connection;
  private outbox: Outbox<DmMessage>;
  private positions = new Map<string, number>();
  private held = new Map<string, Map<number, DmMessage>>();
  private live = false;
  private syncing = false;
  private baselined = false;
  private session = 0;
  private resyncNeeded = new Set<string>();
  private requests: Requests;
  /** Change positions of the inbox (one order over all its conversations). */
  private revs = new Revs();
  private status: SettableStatus | undefined;

  constructor(
    private ctx: InboxContext,
    path: string,
  ) {
    super();
    this.conn = new Connection(ctx.conn, path);
    this.outbox = new Outbox<DmMessage>(
      {
        ready: () => this.live,
        transmit: (e, cb) => this.conn.request({ type: "send_dm", to: e.to!, clientMsgId: e.clientMsgId, text: e.text, mediaIds: e.mediaIds }, cb),
        stored: (m) => this.ingest(m),
        failed: (e, err) => ctx.failed(e, err),
      },
      ctx.store,
      ctx.backoff,
      ctx.random,
    );
    this.requests = new Requests(this.conn, () => this.live, ctx, (m) => this.change(ackChange(m)));
    this.conn.on("state", (s) => this.emit("connection", s));
    this.conn.on("open", () => void this.resync(true, undefined));
    this.conn.on("down", (reason) => {
      this.emit("disconnect", { reason });
      this.live = false;
      this.syncing = false;
      this.session++;
      this.requests.down();
      this.revs.reset();
    });
    this.conn.on("frame", (f) => this.onFrame(f));
  }

  /** The inbox socket's state. */
  get state(): ConnectionState {
    return this.conn.state;
  }

  /** The last seq emitted for a conversation (undefined if it has not been seen). */
  position(conversationId: string): number | undefined {
    return this.positions.get(conversationId);
  }

  /** The highest change position (`rev`) up to which every change of the inbox reached this client. */
  get rev(): number | undefined {
    return this.revs.last;
  }

  /** @internal Reads the starting positions, then opens the socket. */
  async start(): Promise<void> {
    try {
      for (const c of await this.ctx.conversations(true)) {
        if (!this.positions.has(c.id)) this.positions.set(c.id, c.lastSeq);
        // A lower bound of the inbox's change position: resuming from it replays a few changes
        // again (dropped as repeats) but misses none made after the list was read.
        this.revs.note(undefined, c.lastMessage?.rev, true);
      }
      this.baselined = true;
    } catch {
      // Unreadable now: the list read after the socket opens becomes the starting point instead.
    }
    this.conn.start();
  }

  /** @internal */
  wake(checkOnly = false): void {
    this.conn.wake(checkOnly);
  }

  /**
   * Sends a DM to `to` (a user id). Resolves with the stored message (the sender's copy) once
   * acknowledged, exactly once across reconnects; rejects on `blocked`, `not_found`, `forbidden`,
   * `bad_request` or `too_large` without retrying.
   */
  send(to: string, input: DmSendInput, options: { clientMsgId?: string } = {}): Promise<DmMessage> {
    return this.outbox.add({
      clientMsgId: options.clientMsgId ?? this.ctx.newId(),
      scope: "dm",
      to,
      text: input.text,
      mediaIds: input.mediaIds,
      createdAt: Date.now(),
    });
  }

  /** @internal Re-queues a send restored from the store. */
  restore(entry: PendingSend): Promise<DmMessage> {
    return this.outbox.add(entry, false);
  }

  /** DMs still waiting for their ack, oldest first. */
  pending(): PendingSend[] {
    return this.outbox.pending();
  }

  /** Typing in a conversation; dropped while disconnected. */
  typing(conversationId: string, on: boolean): void {
    if (this.live) this.conn.send({ type: "typing", conversationId, on });
  }

  /** Moves the read position of a conversation (never backwards on the server). Retried until acked. */
  markRead(conversationId: string, seq: number): Promise<void> {
    return this.control({ type: "mark_read", conversationId, seq });
  }

  /**
   * Replaces the text of one of this user's DMs (both copies change). Resolves with the message as
   * it now is; this socket emits it as `updated` (from the ack), the user's other sockets and the
   * peer's from the broadcast. Waits while disconnected and is sent again after a reconnect until
   * answered; rejects with a `ChatError` (`forbidden`, `not_found`, `bad_request`, `blocked`, …).
   */
  async editMessage(conversationId: string, messageId: string, text: string, options: { mentions?: string[] } = {}): Promise<DmMessage | undefined> {
    const ack = await this.requests.add({ type: "edit_message", conversationId, messageId, text, mentions: options.mentions });
    return ack.message as DmMessage | undefined;
  }

  /** Deletes one of this user's DMs (both copies); the `deleted` event follows. */
  deleteMessage(conversationId: string, messageId: string): Promise<void> {
    return this.control({ type: "delete_message", conversationId, messageId });
  }

  /** Puts one emoji on a DM (`on` = false takes it off); this socket emits `updated` (the message as it now is), others `reaction`. */
  react(conversationId: string, messageId: string, emoji: string, on = true): Promise<void> {
    return this.control({ type: "react", conversationId, messageId, emoji, on });
  }

  /** Sets the user's status; sent again after every reconnect. */
  setStatus(status: SettableStatus): Promise<void> {
    this.status = status;
    return this.control({ type: "presence", status });
  }

  /** Watches users' statuses: a `presence` snapshot each, then every change. At most 100 ids per call. */
  subscribe(userIds: string[]): Promise<void> {
    return this.control({ type: "subscribe_presence", userIds });
  }

  /** Stops watching users' statuses. */
  unsubscribe(userIds: string[]): Promise<void> {
    return this.control({ type: "unsubscribe_presence", userIds });
  }

  /** @internal */
  close(): void {
    this.conn.close();
    this.live = false;
    const err = new ChatError("closed", "the client was closed");
    this.outbox.abort(err);
    this.requests.abort(err);
  }

  private async control(frame: Parameters<Requests["add"]>[0]): Promise<void> {
    await this.requests.add(frame);
  }

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case "dm":
        return this.ingest(f.message);
      case "notification":
      case "presence":
      case "read":
      case "typing":
      case "suggestion":
      case "mention":
        // Each of these event names is its frame type.
        return (this.emit as (e: string, p: unknown) => void)(f.type, f);
      case "message_updated":
      case "message_deleted":
      case "reaction":
        return this.change(f);
      case "error":
        return this.emit("error", toError(f));
      default:
        this.emit("frame", f);
    }
  }

  /**
   * A change to a DM: dropped if it repeats one already applied; folded into the held copy if the DM
   * is still held (it will be emitted as it now is); emitted otherwise.
   */
  private change(c: Change): void {
    const { id, rev } = changeTarget(c);
    if (!this.revs.note(id, rev, this.live)) return;
    const cid = c.type === "message_updated" ? (c.message as DmMessage).conversationId : c.conversationId;
    const held = cid === undefined ? undefined : this.held.get(cid);
    for (const [seq, m] of held ?? []) if (m.id === id) return void held!.set(seq, applyChange(m, c));
    (this.emit as (e: string, p: unknown) => void)(CHANGE_EVENT[c.type], c.type === "message_updated" ? c.message : c);
  }

  private ingest(m: DmMessage): void {
    this.revs.note(m.id, m.rev, this.live);
    const cid = m.conversationId;
    const pos = this.positions.get(cid);
    if (pos !== undefined && m.seq <= pos) return;
    const held = this.held.get(cid);
    if (!this.live) {
      this.hold(m);
      return;
    }
    if (!held?.size && (pos === undefined || m.seq === pos + 1)) {
      // A conversation never seen starts where its first DM is (a new one starts at 1).
      this.positions.set(cid, m.seq);
      this.emit("dm", m);
      return;
    }
    this.hold(m);
    if (this.syncing) this.resyncNeeded.add(cid);
    else void this.resync(false, [cid]);
  }

  private hold(m: DmMessage): void {
    let held = this.held.get(m.conversationId);
    if (!held) this.held.set(m.conversationId, (held = new Map()));
    held.set(m.seq, m);
  }

  /** The highest seq up to which a conversation is complete here (emitted, or held without a hole). */
  private reach(cid: string): number {
    let seq = this.positions.get(cid) ?? 0;
    const held = this.held.get(cid);
    while (held?.has(seq + 1)) seq++;
    return seq;
  }

  /**
   * Brings conversations up to date with `sync`: `only` those, or every known one (and, with
   * `discover`, those the conversation list shows with messages past what is held here).
   */
  private async resync(discover: boolean, only: string[] | undefined): Promise<void> {
    const session = this.session;
    this.live = false;
    this.syncing = true;
    this.revs.reset();
    // Changes since this position to the DMs held here are replayed by the sync (each chunk of
    // conversations from here; a chunk's continuation from its ack's `lastRev`).
    const sinceRev = this.revs.last;
    let ids = only ?? [...this.positions.keys()];
    if (discover) {
      try {
        const heads = await this.ctx.conversations(false);
        if (session !== this.session) return;
        if (!this.baselined) {
          // The list could not be read before the first connect: it is the starting point now. A DM
          // already held arrived live on this socket, so it is new even if the list counts it.
          for (const c of heads) {
            if (this.positions.has(c.id)) continue;
            const first = Math.min(...(this.held.get(c.id)?.keys() ?? []));
            this.positions.set(c.id, Math.min(c.lastSeq, first - 1));
          }
          this.baselined = true;
        }
        // The socket was open before the list was read: anything newer than the list arrives live.
        const stale = heads.filter((c) => c.lastSeq > (this.positions.has(c.id) ? this.reach(c.id) : 0)).map((c) => c.id);
        // With a change position, every conversation held is synced: its messages may have changed.
        ids = [...new Set([...stale, ...ids.filter((id) => sinceRev !== undefined || this.held.get(id)?.size)])];
      } catch {
        // Without the list, sync every known conversation.
      }
    }
    let failures = 0;
    for (let i = 0; i < ids.length; i += SYNC_CHUNK) {
      const chunk = ids.slice(i, i + SYNC_CHUNK);
      let rev = sinceRev;
      for (;;) {
        const since: Record<string, number> = {};
        for (const id of chunk) since[id] = this.reach(id);
        const reply = await new Promise<Reply>((resolve) => this.conn.request({ type: "sync", since, sinceRev: rev }, resolve));
        if (session !== this.session || reply === null) return;
        if (reply.type === "error") {
          const err = toError(reply);
          if (PERMANENT_CODES.has(err.code)) {
            this.emit("error", err);
            break;
          }
          // Throttled or a server hiccup: the same positions again, later (never skipped).
          const wait = err.retryAfterMs ?? backoffDelay(failures++, this.ctx.backoff, this.ctx.random);
          await new Promise((r) => setTimeout(r, wait));
          if (session !== this.session) return;
          continue;
        }
        failures = 0;
        // The change position this answer covers (changes past a row budget continue from it).
        const covered = reply.lastRev;
        this.revs.note(undefined, covered, false);
        rev = covered ?? rev;
        if (!reply.more) break;
      }
    }
    if (session !== this.session) return;
    this.revs.commit();
    this.syncing = false;
    this.live = true;
    const synced = new Set(ids);
    for (const cid of [...this.held.keys()]) this.release(cid, synced.has(cid));
    const again = [...this.resyncNeeded].filter((cid) => this.held.get(cid)?.size);
    this.resyncNeeded.clear();
    if (again.length) return void this.resync(false, again);
    if (this.status) this.conn.send({ type: "presence", status: this.status });
    this.requests.flush();
    this.outbox.pump();
  }

  /** Emits a conversation's held DMs in order; `final` steps over holes the server had nothing for. */
  private release(cid: string, final: boolean): void {
    const held = this.held.get(cid);
    if (!held) return;
    for (const seq of [...held.keys()].sort((a, b) => a - b)) {
      const m = held.get(seq)!;
      const pos = this.positions.get(cid);
      if (pos !== undefined && seq <= pos) {
        held.delete(seq);
        continue;
      }
      if (!final && pos !== undefined && seq !== pos + 1) return;
      held.delete(seq);
      this.positions.set(cid, seq);
      this.emit("dm", m);
    }
    if (held.size === 0) this.held.delete(cid);
  }
}
