import { backoffDelay } from "./backoff.js";
import { Connection, stopTimer, type ConnectionState, type Timer } from "./connection.js";
import { Emitter } from "./emitter.js";
import { CHANGE_EVENT, Revs, ackChange, applyChange, changeTarget, type Change, type MessageDeleted, type Reaction, type Reload } from "./changes.js";
import { ChatError, PERMANENT_CODES, toError } from "./errors.js";
import { Outbox, Requests, type PendingSend, type SocketContext } from "./outbox.js";
import type { RoomMessage, ServerFrame } from "./wire.js";

/** The `room_state` frame: who is present, the last seq, and (on a first join) the recent messages. */
export type RoomState = Extract<ServerFrame, { type: "room_state" }>;
/**
 * A `system` frame: `join` (a user's first socket joined), `leave` (their last left), or a moderation
 * action (`kick`, `ban`, `mute`, `pin`, `settings`, `room_deleted`, …; `userId` is whom it concerns,
 * `by` who acted, `until` when a ban or mute ends).
 */
export type RoomSystem = Extract<ServerFrame, { type: "system" }>;
/** A `typing` frame. */
export type Typing = Extract<ServerFrame, { type: "typing" }>;
/** A user present in a room. */
export type PresentUser = RoomState["present"][number];

/** Events of a `Room`. */
export interface RoomEvents {
  /**
   * A message of the room's log, each exactly once and in seq order: live ones, the ones missed while
   * disconnected (replayed on rejoin), and this client's own sends once stored. The recent messages of
   * the first join come in `state` instead.
   */
  message: RoomMessage;
  /** Every `room_state`: after the first join (with recent messages) and after every rejoin. */
  state: RoomState;
  system: RoomSystem;
  typing: Typing;
  /** A message was edited (or, on resume, changed while away): the whole message as it now is. */
  updated: RoomMessage;
  /** A message was deleted: a tombstone keeps its seq (fold it in with `applyChange`). */
  deleted: MessageDeleted;
  /** A reaction was added or removed; `count` is the emoji's count after it. */
  reaction: Reaction;
  /**
   * On resume the server could not replay every change made while this client was away
   * (`changesTruncated`): messages already shown may be stale; reload the history shown.
   */
  reload: Reload;
  /** This room's socket changed state. */
  connection: ConnectionState;
  /** The socket went down (`reason`: "heartbeat timeout", "connect timeout", "closed (1006)", …); it reconnects on its own. */
  disconnect: { reason: string };
  /** A frame the room does not handle itself (frames newer than this SDK); unknown types are not errors. */
  frame: ServerFrame;
  /** The server refused something that was not a send (a join, a typing frame). */
  error: ChatError;
}

/** What to send to a room. */
export interface RoomSendInput {
  text?: string;
  mediaIds?: string[];
  /** The id of the message this one replies to. */
  replyTo?: string;
  /** User ids the message mentions (at most 20). */
  mentions?: string[];
}

/** What a room needs from its client. */
export interface RoomContext extends SocketContext {
  released(room: Room): void;
  /**
   * Whether REST refuses the room for good: its error on a 404 (no such room, or a private room the
   * user is not a member of) or a 403 (banned), undefined otherwise or when that could not be learnt.
   */
  refused(roomId: string): Promise<ChatError | undefined>;
}

/**
 * Failed attempts in a row, never opened, after which the room asks REST whether it exists: an upgrade
 * refused with 404 looks like any network failure to a WebSocket client.
 */
const PROBE_AFTER_FAILURES = 3;

/**
 * One room over its own socket (`/api/chat/rooms/:id/ws`). Joins when the socket opens and, after every
 * reconnect, rejoins with `since` = the highest seq it has emitted, following `replayTruncated` /
 * `nextSince` until caught up. Messages that arrive while it catches up, or past a gap, are held and
 * emitted in seq order once the gap is filled: none twice, none skipped.
 */
export class Room extends Emitter<RoomEvents> {
  private pos: number | null = null;
  /** Who is present, from `room_state` and `system` frames. */
  present: PresentUser[] = [];
  private conn: Connection;
  private outbox: Outbox<RoomMessage>;
  private requests: Requests;
  /** Change positions: `sinceRev` on resume, and repeated changes dropped. */
  private revs = new Revs();
  private live = false;
  private joining = false;
  private held = new Map<number, RoomMessage>();
  private truncated = false;
  private openedSinceDown = false;
  private failuresInARow = 0;
  private joinTimer: Timer | undefined;
  private joinFailures = 0;
  /** `lastRev` of the latest `room_state`: committed once its join completes. */
  private stateRev: number | undefined;

  constructor(
    readonly id: string,
    private ctx: RoomContext,
  ) {
    super();
    this.conn = new Connection(ctx.conn, `/api/chat/rooms/${encodeURIComponent(id)}/ws`);
    this.outbox = new Outbox<RoomMessage>(
      {
        ready: () => this.live,
        transmit: (e, cb) =>
          this.conn.request(
            { type: "send_room_message", clientMsgId: e.clientMsgId, text: e.text, mediaIds: e.mediaIds, replyTo: e.replyTo, mentions: e.mentions },
            cb,
          ),
        stored: (m) => this.ingest(m),
        failed: (e, err) => ctx.failed(e, err),
      },
      ctx.store,
      ctx.backoff,
      ctx.random,
    );
    this.requests = new Requests(this.conn, () => this.live, ctx, (m) => this.change(ackChange(m)));
    this.conn.on("state", (s) => this.emit("connection", s));
    this.conn.on("open", () => {
      this.openedSinceDown = true;
      this.failuresInARow = 0;
      this.join();
    });
    this.conn.on("down", (reason) => {
      this.emit("disconnect", { reason });
      if (!this.openedSinceDown && ++this.failuresInARow === PROBE_AFTER_FAILURES) void this.probe();
      this.openedSinceDown = false;
      this.live = false;
      this.joining = false;
      this.requests.down();
      this.revs.reset();
      stopTimer(this.joinTimer);
      this.joinTimer = undefined;
    });
    this.conn.on("frame", (f) => this.onFrame(f));
  }

  /** The highest seq emitted (or known from the first `room_state`); null before the first join. */
  get position(): number | null {
    return this.pos;
  }

  /** The highest change position (`rev`) up to which every change reached this room; undefined before the first. */
  get rev(): number | undefined {
    return this.revs.last;
  }

  /** This room's socket state. */
  get state(): ConnectionState {
    return this.conn.state;
  }

  /** @internal The client's wake-up (online, page visible). */
  wake(checkOnly = false): void {
    this.conn.wake(checkOnly);
  }

  /** @internal Opens the socket (lazily, on first use). */
  start(): void {
    this.conn.start();
  }

  /**
   * Sends a message. Resolves with the stored message once acknowledged, exactly once even across
   * reconnects (the queue retries with the same `clientMsgId`); rejects on a permanent refusal
   * (`forbidden`, `bad_request`, `not_found`, `too_large`, `blocked`) without retrying.
   */
  send(input: RoomSendInput, options: { clientMsgId?: string } = {}): Promise<RoomMessage> {
    const entry: PendingSend = {
      clientMsgId: options.clientMsgId ?? this.ctx.newId(),
      scope: `room:${this.id}`,
      text: input.text,
      mediaIds: input.mediaIds,
      replyTo: input.replyTo,
      mentions: input.mentions,
      createdAt: Date.now(),
    };
    return this.outbox.add(entry);
  }

  /** @internal Re-queues a send restored from the store (after a reload). */
  restore(entry: PendingSend): Promise<RoomMessage> {
    return this.outbox.add(entry, false);
  }

  /** Sends still waiting for their ack, oldest first. */
  pending(): PendingSend[] {
    return this.outbox.pending();
  }

  /**
   * Replaces the text of one of this user's messages. Resolves with the message as it now is (from
   * the ack). The server answers the changer's socket with that ack instead of the broadcast the
   * others get; the SDK emits it as the same event (`updated` here, `deleted` for a deletion), once.
   * Like every change below, it waits while disconnected and is sent again after a reconnect until
   * answered (changes are idempotent); it is kept in memory, not in the store. Rejects with a
   * `ChatError`: `forbidden` (not the author), `not_found`, `bad_request`, `muted` (`until`),
   * `frozen`, `filtered`, `banned`.
   */
  async editMessage(messageId: string, text: string, options: { mentions?: string[] } = {}): Promise<RoomMessage | undefined> {
    return (await this.requests.add({ type: "edit_message", messageId, text, mentions: options.mentions })).message as RoomMessage | undefined;
  }

  /** Deletes a message (the author's own, or any as a moderator); the `deleted` event follows. */
  async deleteMessage(messageId: string): Promise<void> {
    await this.requests.add({ type: "delete_message", messageId });
  }

  /**
   * Puts one emoji on a message (`on` = false takes it off). Others get a `reaction` event; this
   * socket gets `updated` with the message as it now is (counts, and `myReactions`).
   */
  async react(messageId: string, emoji: string, on = true): Promise<void> {
    await this.requests.add({ type: "react", messageId, emoji, on });
  }

  /** Moves this user's read position in the room (for `unread` in `rest.rooms({ joined: true })`). */
  async markRead(seq: number): Promise<void> {
    await this.requests.add({ type: "mark_read", seq });
  }

  /** Tells the others this user is typing (or stopped). Dropped while not joined: typing is ephemeral. */
  typing(on: boolean): void {
    if (this.live) this.conn.send({ type: "typing", on });
  }

  /** Leaves the room and closes its socket. Queued sends are rejected; the store keeps them. */
  leave(): void {
    if (this.conn.isOpen) this.conn.send({ type: "leave_room" });
    this.close();
  }

  /** @internal */
  close(): void {
    stopTimer(this.joinTimer);
    this.conn.close();
    this.live = false;
    const err = new ChatError("closed", `left room ${this.id}`);
    this.outbox.abort(err);
    this.requests.abort(err);
    this.ctx.released(this);
  }

  /** Gives up on a room REST refuses (gone, private, banned): rejects and drops its queued sends, closes. */
  private async probe(): Promise<void> {
    const err = await this.ctx.refused(this.id);
    if (err && this.conn.state !== "closed") this.gone(err);
  }

  /** The room is gone for good (deleted, or refused): queued sends fail, the room closes. */
  private gone(err: ChatError): void {
    this.emit("error", err);
    this.outbox.fail(err);
    this.close();
  }

  private join(): void {
    this.live = false;
    this.joining = true;
    this.truncated = false;
    this.revs.reset();
    const since = this.reach();
    const sinceRev = since === undefined ? undefined : this.revs.last;
    this.conn.request(since === undefined ? { type: "join_room" } : { type: "join_room", since, sinceRev }, (reply) => {
      if (reply === null) return; // Socket down: the next open joins again.
      if (reply.type === "error") {
        const err = toError(reply);
        if (PERMANENT_CODES.has(err.code)) {
          // Refused for good (a ban, a private room): nothing queued for this room can be sent.
          return this.gone(err);
        }
        // Throttled (a long catch-up costs tokens) or a server hiccup: join again later, still holding.
        const wait = err.retryAfterMs ?? backoffDelay(this.joinFailures++, this.ctx.backoff, this.ctx.random);
        this.joinTimer = setTimeout(() => {
          this.joinTimer = undefined;
          if (this.conn.isOpen) this.join();
        }, wait);
        return;
      }
      this.joinFailures = 0;
      this.joining = false;
      // The server answered room_state and the replay before this ack.
      this.revs.commit(this.stateRev);
      if (this.truncated) return this.join();
      this.live = true;
      this.release(true);
      this.requests.flush();
      this.outbox.pump();
    });
  }

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case "room_state":
        if (this.pos === null) this.pos = f.lastSeq;
        // A first join's recent messages are history, shown from `state`; none of them is emitted.
        this.truncated = f.replayTruncated === true;
        this.stateRev = f.lastRev;
        this.present = f.present;
        this.emit("state", f);
        if (f.changesTruncated) this.emit("reload", { roomId: this.id, reason: "changes_truncated" });
        return;
      case "message":
        return this.ingest(f.message);
      case "system":
        if (f.event === "join") {
          if (!this.present.some((p) => p.userId === f.userId)) this.present = [...this.present, { userId: f.userId, name: f.name }];
        } else if (f.event === "leave") {
          this.present = this.present.filter((p) => p.userId !== f.userId);
        }
        this.emit("system", f);
        if (f.event === "room_deleted") this.gone(new ChatError("not_found", `room ${this.id} was deleted`));
        return;
      case "message_updated":
      case "message_deleted":
      case "reaction":
        return this.change(f);
      case "typing":
        this.emit("typing", f);
        return;
      case "error":
        // Unasked for, before the server closes this user's socket: `banned`, or `not_found` (removed
        // from a private room) end the room here (reconnecting would be refused); others (a kick's
        // `forbidden`) are reported and the room reconnects.
        if (f.code === "banned" || f.code === "not_found") return this.gone(toError(f));
        this.emit("error", toError(f));
        return;
      default:
        this.emit("frame", f);
    }
  }

  /**
   * A change to a message: dropped if it repeats one already applied; folded into the copy if the
   * message is still held (it will be emitted as it now is); emitted otherwise.
   */
  private change(c: Change): void {
    const { id, rev } = changeTarget(c);
    if (!this.revs.note(id, rev, this.live)) return;
    for (const [seq, m] of this.held) if (m.id === id) return void this.held.set(seq, applyChange(m, c));
    (this.emit as (e: string, p: unknown) => void)(CHANGE_EVENT[c.type], c.type === "message_updated" ? c.message : c);
  }

  /** The highest seq up to which the log is complete here: emitted, or held with no hole before it. */
  private reach(): number | undefined {
    if (this.pos === null) return undefined;
    let seq = this.pos;
    while (this.held.has(seq + 1)) seq++;
    return seq;
  }

  /** Every message of the log, live, replayed or acked, goes through here. */
  private ingest(m: RoomMessage): void {
    this.revs.note(m.id, m.rev, this.live);
    if (this.pos !== null && m.seq <= this.pos) return;
    if (this.pos === null || !this.live) {
      this.held.set(m.seq, m);
      return;
    }
    if (m.seq === this.pos + 1 && this.held.size === 0) {
      this.pos = m.seq;
      this.emit("message", m);
      return;
    }
    // A gap: hold this one and ask the room for what lies between (a join on a joined socket
    // replays only up to where its live stream began, so nothing comes twice).
    this.held.set(m.seq, m);
    if (!this.joining) this.join();
  }

  /**
   * Emits held messages in seq order. After a completed catch-up (`final`), a hole the server had
   * nothing for is stepped over; otherwise emitting stops at the first hole.
   */
  private release(final: boolean): void {
    const seqs = [...this.held.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      const m = this.held.get(seq)!;
      this.held.delete(seq);
      if (this.pos !== null && seq <= this.pos) continue;
      if (!final && this.pos !== null && seq !== this.pos + 1) {
        this.held.set(seq, m);
        return;
      }
      this.pos = seq;
      this.emit("message", m);
    }
  }
}
