import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { ChatError, PERMANENT_CODES, toError } from "./errors.js";
import { stopTimer, type Connection, type ConnectionContext, type OutFrame, type Reply, type Timer } from "./connection.js";
import type { DmMessage, RoomMessage } from "./wire.js";

/** A send waiting for its ack, as kept in an `OutboxStore`. Plain JSON. */
export interface PendingSend {
  /** The idempotency key: every retry of this send carries it, so the server stores it once. */
  clientMsgId: string;
  /** `room:<roomId>` or `dm` (the inbox socket). */
  scope: string;
  /** For DMs: the recipient's user id. */
  to?: string;
  text?: string;
  mediaIds?: string[];
  replyTo?: string;
  /** For room messages: the user ids it mentions. */
  mentions?: string[];
  /** When it was queued (epoch ms). */
  createdAt: number;
}

/**
 * Where queued sends are kept until acknowledged, so that they survive a page reload. Methods may be
 * synchronous or return promises. `load` returns every entry in the order they were put.
 */
export interface OutboxStore {
  load(): PendingSend[] | Promise<PendingSend[]>;
  put(entry: PendingSend): void | Promise<void>;
  delete(clientMsgId: string): void | Promise<void>;
}

/** What every socket with an outbox (a room, the inbox) needs from its client. */
export interface SocketContext {
  conn: ConnectionContext;
  store: OutboxStore;
  backoff?: BackoffOptions;
  random: () => number;
  newId(): string;
  failed(entry: PendingSend, error: ChatError): void;
}

/** Keeps queued sends in memory: they survive reconnects, not a reload. The default. */
export class MemoryOutboxStore implements OutboxStore {
  private entries = new Map<string, PendingSend>();
  load(): PendingSend[] {
    return [...this.entries.values()];
  }
  put(entry: PendingSend): void {
    this.entries.set(entry.clientMsgId, entry);
  }
  delete(clientMsgId: string): void {
    this.entries.delete(clientMsgId);
  }
}

/** The part of the Web Storage API `LocalStorageOutboxStore` uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Keeps queued sends in `localStorage` (or any Web Storage) under one key, so a send made offline is
 * still sent after the page is reloaded. Use one key per signed-in user. Two tabs sharing the key
 * may both send an entry; the shared `clientMsgId` makes the server store it once.
 */
export class LocalStorageOutboxStore implements OutboxStore {
  constructor(
    private key = "edge-chat:outbox",
    private storage: StorageLike = (globalThis as { localStorage?: StorageLike }).localStorage as StorageLike,
  ) {
    if (!storage) throw new Error("LocalStorageOutboxStore needs localStorage (or a Storage passed in)");
  }
  load(): PendingSend[] {
    try {
      const v = JSON.parse(this.storage.getItem(this.key) ?? "[]") as unknown;
      return Array.isArray(v) ? (v as PendingSend[]) : [];
    } catch {
      return [];
    }
  }
  put(entry: PendingSend): void {
    this.save([...this.load().filter((e) => e.clientMsgId !== entry.clientMsgId), entry]);
  }
  delete(clientMsgId: string): void {
    this.save(this.load().filter((e) => e.clientMsgId !== clientMsgId));
  }
  private save(entries: PendingSend[]): void {
    this.storage.setItem(this.key, JSON.stringify(entries));
  }
}

type Stored = RoomMessage | DmMessage;

/**
 * Runs a store operation whose failure (a full localStorage, a closed database) must not fail the
 * send: the entry is still queued in memory; it just would not survive a reload.
 */
function quietly(op: () => void | Promise<void>): void {
  try {
    void Promise.resolve(op()).catch(() => {});
  } catch {
    // Synchronous failure: same as above.
  }
}

interface Item<M extends Stored> {
  entry: PendingSend;
  resolve(m: M): void;
  reject(e: Error): void;
}

/** What an outbox needs from the room or inbox it sends through. */
export interface OutboxHost<M extends Stored> {
  /** True when sends may go out (socket open, joined or synced). */
  ready(): boolean;
  /** Sends the entry's frame as a request. */
  transmit(entry: PendingSend, onReply: (reply: Reply) => void): void;
  /** Handles the stored message of an ack, in stream order, before the send's promise settles. */
  stored(message: M): void;
  /** A send refused for good (also rejects its promise). */
  failed(entry: PendingSend, error: ChatError): void;
}

/**
 * The sends of one socket, in order, one at a time: the next goes out when the previous is
 * acknowledged, so a refusal or a rate limit can never reorder them. An entry leaves the queue (and
 * the store) only on its ack or on a permanent refusal; a socket that drops mid-send leaves it at the
 * head, and it is sent again with the same `clientMsgId` once the socket is ready.
 */
export class Outbox<M extends Stored> {
  private items: Item<M>[] = [];
  private inFlight = false;
  private waitTimer: Timer | undefined;
  private transientFailures = 0;

  constructor(
    private host: OutboxHost<M>,
    private store: OutboxStore,
    private backoff: BackoffOptions | undefined,
    private random: () => number,
  ) {}

  /** Queues a send; the promise settles with its ack (the stored message) or a permanent refusal. */
  add(entry: PendingSend, persist = true): Promise<M> {
    return new Promise<M>((resolve, reject) => {
      this.items.push({ entry, resolve, reject });
      if (persist) quietly(() => this.store.put(entry));
      this.pump();
    });
  }

  /** The entries waiting, oldest first (for showing them as "sending"). */
  pending(): PendingSend[] {
    return this.items.map((i) => i.entry);
  }

  /** Sends the head of the queue if nothing is in flight and the host is ready. */
  pump(): void {
    if (this.inFlight || this.waitTimer !== undefined || !this.host.ready()) return;
    const item = this.items[0];
    if (!item) return;
    this.inFlight = true;
    this.host.transmit(item.entry, (reply) => {
      this.inFlight = false;
      if (reply === null) return; // The socket went down: the host pumps again when it is ready.
      if (reply.type === "ack") {
        this.items.shift();
        this.transientFailures = 0;
        quietly(() => this.store.delete(item.entry.clientMsgId));
        const message = reply.message as M | undefined;
        if (message) this.host.stored(message);
        if (message) item.resolve(message);
        else item.reject(new ChatError("internal", "the ack carried no message"));
      } else if (PERMANENT_CODES.has(reply.code)) {
        this.items.shift();
        quietly(() => this.store.delete(item.entry.clientMsgId));
        const err = toError(reply);
        this.host.failed(item.entry, err);
        item.reject(err);
      } else {
        // rate_limited waits what the server says; anything else (internal) backs off.
        const wait =
          reply.code === "rate_limited" && reply.retryAfterMs !== undefined
            ? reply.retryAfterMs
            : backoffDelay(this.transientFailures++, this.backoff, this.random);
        this.waitTimer = setTimeout(() => {
          this.waitTimer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.pump();
    });
  }

  /** Refuses every queued send for good: rejected, reported, and removed from the store. */
  fail(error: ChatError): void {
    for (const i of this.items) {
      quietly(() => this.store.delete(i.entry.clientMsgId));
      this.host.failed(i.entry, error);
    }
    this.abort(error);
  }

  /** Rejects every queued send (the client is closing); the store keeps them for the next session. */
  abort(error: ChatError): void {
    stopTimer(this.waitTimer);
    this.waitTimer = undefined;
    const items = this.items;
    this.items = [];
    for (const i of items) i.reject(error);
  }
}

/** The `ack` that settles a request. */
export type Ack = Extract<NonNullable<Reply>, { type: "ack" }>;

interface Req {
  frame: OutFrame;
  resolve(ack: Ack): void;
  reject(e: ChatError): void;
  sent: boolean;
}

/**
 * Requests that are not sends (`edit_message`, `delete_message`, `react`, `mark_read`, presence
 * subscriptions): each is idempotent on the server, so it waits for a ready socket, is sent again after
 * a reconnect until answered, and settles with its `ack` or a permanent refusal. `rate_limited` and
 * `internal` are retried after `retryAfterMs` (or a backoff). Kept in memory only: a change queued
 * offline survives reconnects, not a reload (unlike sends, which the `OutboxStore` keeps).
 */
export class Requests {
  private items: Req[] = [];
  private failures = 0;

  constructor(
    private conn: Connection,
    private ready: () => boolean,
    private ctx: SocketContext,
    /** An ack carrying a message (the changed message, in the place of the change's broadcast), in stream order. */
    private acked: (message: RoomMessage | DmMessage) => void,
  ) {}

  add(frame: OutFrame): Promise<Ack> {
    return new Promise((resolve, reject) => {
      this.items.push({ frame, resolve, reject, sent: false });
      this.flush();
    });
  }

  /** Sends every request not yet sent on this socket (call when the socket is ready again). */
  flush(): void {
    if (!this.ready()) return;
    for (const r of this.items) {
      if (r.sent) continue;
      r.sent = true;
      this.conn.request(r.frame, (reply) => {
        if (reply === null) return void (r.sent = false);
        if (reply.type === "error" && !PERMANENT_CODES.has(reply.code)) {
          setTimeout(
            () => {
              r.sent = false;
              this.flush();
            },
            reply.retryAfterMs ?? backoffDelay(this.failures++, this.ctx.backoff, this.ctx.random),
          );
          return;
        }
        this.failures = 0;
        this.items.splice(this.items.indexOf(r), 1);
        if (reply.type === "ack") {
          if (reply.message) this.acked(reply.message);
          r.resolve(reply);
        }
        else r.reject(toError(reply));
      });
    }
  }

  /** The socket went down: everything unanswered goes again on the next one. */
  down(): void {
    for (const r of this.items) r.sent = false;
  }

  /** Rejects everything waiting (the client or room is closing). */
  abort(error: ChatError): void {
    for (const r of this.items.splice(0)) r.reject(error);
  }
}
