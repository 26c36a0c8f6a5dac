import { Emitter } from "./emitter.js";
import type { ConnectionContext, ConnectionState, TimingOptions, WebSocketConstructor } from "./connection.js";
import type { ChatError } from "./errors.js";
import { Inbox } from "./inbox.js";
import { MemoryOutboxStore, type OutboxStore, type PendingSend, type SocketContext } from "./outbox.js";
import { Rest } from "./rest.js";
import { Room } from "./room.js";

/** Options of a `ChatClient`. */
export interface ChatClientOptions extends TimingOptions {
  /** The server, e.g. `http://127.0.0.1:8787` (WebSocket URLs are derived from it). */
  baseUrl: string;
  /** The bearer token, or a function called on every connect and request (so it can refresh it). */
  token: string | (() => string | Promise<string>);
  /** Where queued sends are kept until acked (default: memory). `LocalStorageOutboxStore` survives a reload. */
  store?: OutboxStore;
  /** The WebSocket class (default `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** The fetch function (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Random numbers in [0, 1) for jitter (tests pass a fixed one). */
  random?: () => number;
}

/** Events of a `ChatClient`. */
export interface ChatClientEvents {
  /** The state over all open sockets: the worst of them ("open" when every one is open). */
  connection: ConnectionState;
  /** A send refused for good (its promise rejects too); also for sends restored from the store. */
  failed: { entry: PendingSend; error: ChatError };
}

/** Ranks of states for the aggregate: the worst socket wins. */
const RANK: Record<ConnectionState, number> = { open: 0, connecting: 1, reconnecting: 2, offline: 3, closed: 4 };

interface Platform {
  addEventListener?(type: string, fn: () => void): void;
  removeEventListener?(type: string, fn: () => void): void;
  navigator?: { onLine?: boolean };
  document?: { visibilityState?: string; addEventListener?(t: string, fn: () => void): void; removeEventListener?(t: string, fn: () => void): void };
}

/**
 * The entry point: one socket per room (opened on `room()`), one inbox socket (opened on `inbox()`),
 * and the REST helpers (`chat.rest`). Reconnects, resumes and retries on its own; `close()` ends it.
 */
export class ChatClient extends Emitter<ChatClientEvents> {
  /** REST helpers: rooms, history, DMs, blocks, presence, suggestions, media upload. */
  readonly rest: Rest;
  private rooms = new Map<string, Room>();
  private inboxHandle: Inbox | undefined;
  private store: OutboxStore;
  private connCtx: ConnectionContext;
  /** What every room and the inbox share: the connection context, the outbox store, ids, failures. */
  private socketCtx: SocketContext;
  private closed = false;
  private aggregate: ConnectionState = "connecting";
  private restored: Promise<void>;
  private unlisten: () => void;

  constructor(private options: ChatClientOptions) {
    super();
    const base = options.baseUrl.replace(/\/+$/, "");
    const tokenOpt = options.token;
    const token = async () => (typeof tokenOpt === "function" ? await tokenOpt() : tokenOpt);
    const WS = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error("no WebSocket: pass the `WebSocket` option");
    const platform = globalThis as unknown as Platform;
    this.store = options.store ?? new MemoryOutboxStore();
    this.rest = new Rest({ baseUrl: base, token, fetch: options.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a)) });
    this.connCtx = {
      wsUrl: (path) => base.replace(/^http/, "ws") + path,
      token,
      WebSocket: WS,
      timing: options,
      random: options.random ?? Math.random,
      online: () => platform.navigator?.onLine !== false,
    };
    this.socketCtx = {
      conn: this.connCtx,
      store: this.store,
      backoff: options.backoff,
      random: this.connCtx.random,
      newId,
      failed: (entry, error) => this.emit("failed", { entry, error }),
    };
    // The platform's hints: network back, page visible again. A wake-up is cheap (a ping on open
    // sockets, a jittered early retry on waiting ones).
    const wake = () => {
      if (platform.document?.visibilityState !== "hidden") this.wake();
    };
    // Gone offline: an open socket may be dead without knowing it; its ping's deadline will tell.
    const check = () => {
      this.inboxHandle?.wake(true);
      for (const r of this.rooms.values()) r.wake(true);
    };
    platform.addEventListener?.("online", wake);
    platform.addEventListener?.("offline", check);
    platform.document?.addEventListener?.("visibilitychange", wake);
    this.unlisten = () => {
      platform.removeEventListener?.("online", wake);
      platform.removeEventListener?.("offline", check);
      platform.document?.removeEventListener?.("visibilitychange", wake);
    };
    this.restored = this.restore();
  }

  /** The state over every socket this client opened. */
  get state(): ConnectionState {
    return this.aggregate;
  }

  /** The room `roomId`: joined on first use, then kept joined and resumed across reconnects. */
  room(roomId: string): Room {
    let room = this.rooms.get(roomId);
    if (room) return room;
    room = new Room(roomId, {
      ...this.socketCtx,
      refused: (id) =>
        this.rest.getRoom(id).then(
          () => undefined,
          (err: ChatError) => (err.status === 404 || err.status === 403 ? err : undefined),
        ),
      released: (r) => {
        if (this.rooms.get(r.id) === r) this.rooms.delete(r.id);
        this.updateState();
      },
    });
    this.rooms.set(roomId, room);
    room.on("connection", () => this.updateState());
    if (!this.closed) room.start();
    this.updateState();
    return room;
  }

  /**
   * The user's inbox (DMs, notifications, presence), opened on first use. `lat`/`lon` (first call
   * only) record the user's coarse location for room suggestions.
   */
  inbox(location?: { lat: number; lon: number }): Inbox {
    if (this.inboxHandle) return this.inboxHandle;
    const path = location ? `/api/chat/ws?lat=${location.lat}&lon=${location.lon}` : "/api/chat/ws";
    const inbox = new Inbox(
      {
        ...this.socketCtx,
        conversations: async (all) => {
          const heads: { id: string; lastSeq: number }[] = [];
          let cursor: string | undefined;
          // One page of 200 after a reconnect (new conversations come first); every page at start.
          for (let page = 0; page < (all ? 50 : 1); page++) {
            const res = await this.rest.conversations({ limit: 200, cursor });
            heads.push(...res.conversations);
            if (!res.nextCursor) break;
            cursor = res.nextCursor;
          }
          return heads;
        },
      },
      path,
    );
    this.inboxHandle = inbox;
    inbox.on("connection", () => this.updateState());
    if (!this.closed) void inbox.start();
    this.updateState();
    return inbox;
  }

  /**
   * Tells the client the network or the app is back (browsers do this by themselves from `online` and
   * `visibilitychange`; in React Native call it from AppState "active" or a network listener): open
   * sockets are checked with a ping, waiting ones retry soon.
   */
  wake(): void {
    this.inboxHandle?.wake();
    for (const r of this.rooms.values()) r.wake();
  }

  /** Resolves once sends kept in the store from an earlier session are queued again. */
  ready(): Promise<void> {
    return this.restored;
  }

  /** Closes every socket; queued sends are rejected with `closed` (and stay in the store). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    this.inboxHandle?.close();
    for (const r of [...this.rooms.values()]) r.close();
    this.aggregate = "closed";
    this.emit("connection", "closed");
  }

  /** Queues the store's entries again: room sends open their room, DMs the inbox. */
  private async restore(): Promise<void> {
    let entries: PendingSend[];
    try {
      entries = await this.store.load();
    } catch {
      return;
    }
    for (const e of entries) {
      if (this.closed) return;
      const p = e.scope === "dm" ? this.inbox().restore(e) : e.scope.startsWith("room:") ? this.room(e.scope.slice(5)).restore(e) : undefined;
      // Nobody awaits a restored send; its outcome is the `message`/`dm` event or `failed`.
      p?.catch(() => {});
    }
  }

  private updateState(): void {
    if (this.closed) return;
    const states = [...this.rooms.values(), ...(this.inboxHandle ? [this.inboxHandle] : [])].map((h) => h.state);
    const worst = states.reduce<ConnectionState>((w, s) => (RANK[s] > RANK[w] ? s : w), states.length ? "open" : "connecting");
    if (worst === this.aggregate) return;
    this.aggregate = worst;
    this.emit("connection", worst);
  }
}

/** A client message id: random, so that a send retried after a reload keeps it. */
function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
