import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import type { ClientFrame, ServerFrame } from "./wire.js";

/** The state of one socket, or of the client as a whole (see `ChatClient`). */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "offline" | "closed";

/** The part of the WebSocket API the SDK uses: the browser's, Node's (>= 22), React Native's, Workers'. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket` by default). */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** Timing of every socket of a client. All in ms. */
export interface TimingOptions {
  backoff?: BackoffOptions;
  /** An attempt that has not opened by then is abandoned and retried. Default 10 000. */
  connectTimeoutMs?: number;
  /** How often an open socket sends `{"type":"ping"}`. Default 20 000 (the server closes sockets silent for 45 s). */
  pingIntervalMs?: number;
  /** A ping unanswered (no frame at all) this long marks the connection dead. Default 10 000. */
  pongTimeoutMs?: number;
  /** A connection that stayed open this long resets the backoff. Default 10 000. */
  stableAfterMs?: number;
}

/** What a connection needs from its client. */
export interface ConnectionContext {
  wsUrl(path: string): string;
  token(): Promise<string>;
  WebSocket: WebSocketConstructor;
  timing: TimingOptions;
  random: () => number;
  /** false when the platform says it is offline (navigator.onLine). */
  online(): boolean;
}

/** An answer to a request: its `ack` or `error` frame, or null when the socket went down first. */
export type Reply = Extract<ServerFrame, { type: "ack" | "error" }> | null;

/** A client frame without its `id` (the connection numbers requests). */
export type OutFrame = ClientFrame extends infer F ? (F extends { id?: unknown } ? Omit<F, "id"> : never) : never;

interface ConnectionEvents {
  state: ConnectionState;
  /** The socket opened (every time: first connect and every reconnect). */
  open: undefined;
  /** A server frame, batches already unpacked, replies to requests excluded. */
  frame: ServerFrame;
  /** The socket went down; `reason` says why. */
  down: string;
}

/** A timer handle, whatever the platform's setTimeout returns. */
export type Timer = ReturnType<typeof setTimeout>;

/** clearTimeout that accepts "no timer". */
export function stopTimer(t: Timer | undefined): void {
  if (t !== undefined) clearTimeout(t);
}

const PING = '{"type":"ping"}';
const OPEN = 1;
/** Close code the SDK uses when it abandons a socket (application range; never sent by the server). */
const CLIENT_GIVE_UP = 4000;

/**
 * One WebSocket kept alive: connects when started, calls the token provider on every attempt, retries
 * with capped full-jitter backoff, pings and abandons a connection whose ping goes unanswered, and
 * unpacks `batch` frames. Request replies (`ack`/`error` with an `id`) are delivered to their
 * request's callback synchronously, in stream order, and not as frames.
 */
export class Connection extends Emitter<ConnectionEvents> {
  state: ConnectionState = "connecting";
  private ws: WebSocketLike | undefined;
  private started = false;
  private closed = false;
  private everOpened = false;
  private attempt = 0;
  private generation = 0;
  private openedAt = 0;
  private lastAttemptAt = -Infinity;
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private pingTimer: Timer | undefined;
  private pongTimer: Timer | undefined;
  private nextId = 1;
  private pending = new Map<number, (reply: Reply) => void>();

  constructor(
    private ctx: ConnectionContext,
    readonly path: string,
  ) {
    super();
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.ws !== undefined && this.state === "open";
  }

  /** Starts connecting (idempotent). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.connect();
  }

  /**
   * Sends a frame now if the socket is open (returns false otherwise: nothing is buffered here;
   * the room, inbox and queue decide what to resend after a reconnect).
   */
  send(frame: OutFrame): boolean {
    if (!this.isOpen) return false;
    this.ws!.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Sends a frame with a fresh `id`; `onReply` gets its `ack` or `error`, or null if the socket goes
   * down first (or is not open now). Called synchronously while the reply's frame is handled, so
   * frames after it in the stream are handled after the callback.
   */
  request(frame: OutFrame, onReply: (reply: Reply) => void): void {
    if (!this.isOpen) return onReply(null);
    const id = this.nextId++;
    this.pending.set(id, onReply);
    this.ws!.send(JSON.stringify({ ...frame, id }));
  }

  /**
   * The platform says the network is back or the page became visible: an open socket is checked with
   * a ping now (it may have died in the background); a socket waiting to retry retries soon, after a
   * short jittered delay rather than the grown backoff (every socket of every tab wakes at once).
   * `checkOnly` (the platform went offline): only the ping, and a waiting socket shows "offline".
   */
  wake(checkOnly = false): void {
    if (this.closed || !this.started) return;
    if (this.ws) {
      if (this.isOpen) this.ping();
      return;
    }
    if (this.retryTimer === undefined) return;
    if (checkOnly) return this.setState("offline");
    stopTimer(this.retryTimer);
    this.attempt = 0;
    const base = this.ctx.timing.backoff?.baseMs ?? 500;
    // Never sooner than `base` after the previous attempt: a flapping network cannot make a loop.
    const earliest = Math.max(0, this.lastAttemptAt + base - Date.now());
    this.retryTimer = setTimeout(() => void this.connect(), earliest + Math.floor(this.ctx.random() * base));
  }

  /** Closes for good: no reconnect; pending requests get null. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    stopTimer(this.retryTimer);
    this.retryTimer = undefined;
    const ws = this.ws;
    this.teardown("closed by the client");
    try {
      ws?.close(1000, "bye");
    } catch {
      // Already closing or never opened: nothing to do.
    }
    this.setState("closed");
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.closed) return;
    const gen = ++this.generation;
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    this.lastAttemptAt = Date.now();
    let token: string;
    try {
      token = await this.ctx.token();
    } catch {
      if (gen === this.generation) this.scheduleRetry();
      return;
    }
    if (gen !== this.generation || this.closed) return;
    let ws: WebSocketLike;
    try {
      ws = new this.ctx.WebSocket(this.ctx.wsUrl(this.path), ["edge-chat", `bearer.${token}`]);
    } catch {
      return this.scheduleRetry();
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => this.drop(ws, "connect timeout"), this.ctx.timing.connectTimeoutMs ?? 10_000);
    ws.onopen = () => {
      if (ws !== this.ws) return;
      stopTimer(this.connectTimer);
      this.everOpened = true;
      this.openedAt = Date.now();
      this.setState("open");
      this.schedulePing();
      this.emit("open", undefined);
    };
    ws.onmessage = (ev) => {
      if (ws === this.ws) this.receive(ev.data);
    };
    // Node's WebSocket fires `error` and never `close` on a refused connection, and a browser may
    // fire either first: whichever comes first ends this attempt, and the other is ignored.
    ws.onerror = () => this.drop(ws, "error");
    ws.onclose = (ev) => this.drop(ws, `closed (${ev.code ?? "no code"}${ev.reason ? `: ${ev.reason}` : ""})`);
  }

  private receive(data: unknown): void {
    // Any frame proves the connection alive, not only the pong.
    stopTimer(this.pongTimer);
    this.pongTimer = undefined;
    if (typeof data !== "string") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof parsed !== "object" || parsed === null) return;
    const msg = parsed as { type?: unknown; frames?: unknown };
    const frames = msg.type === "batch" && Array.isArray(msg.frames) ? msg.frames : [msg];
    for (const f of frames) {
      // The socket may have been dropped by a handler of an earlier frame of this batch.
      if (this.ws === undefined) return;
      if (typeof f !== "object" || f === null || typeof (f as { type?: unknown }).type !== "string") continue;
      const frame = f as ServerFrame;
      if ((frame.type === "ack" || frame.type === "error") && typeof frame.id === "number" && this.pending.has(frame.id)) {
        const cb = this.pending.get(frame.id)!;
        this.pending.delete(frame.id);
        cb(frame);
        continue;
      }
      if (frame.type === "pong") continue;
      this.emit("frame", frame);
    }
  }

  private schedulePing(): void {
    stopTimer(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.ping();
      this.schedulePing();
    }, this.ctx.timing.pingIntervalMs ?? 20_000);
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || !this.isOpen) return;
    try {
      ws.send(PING);
    } catch {
      return this.drop(ws, "send failed");
    }
    if (this.pongTimer === undefined) {
      this.pongTimer = setTimeout(() => this.drop(ws, "heartbeat timeout"), this.ctx.timing.pongTimeoutMs ?? 10_000);
    }
  }

  /** Ends the current socket (if it is `ws`) and schedules the next attempt. Idempotent per socket. */
  private drop(ws: WebSocketLike, reason: string): void {
    if (ws !== this.ws) return;
    const wasOpen = this.isOpen;
    const stable = wasOpen && Date.now() - this.openedAt >= (this.ctx.timing.stableAfterMs ?? 10_000);
    this.teardown(reason);
    try {
      // A frozen connection would wait for a closing handshake that never comes; we do not wait.
      ws.close(CLIENT_GIVE_UP, reason.slice(0, 100));
    } catch {
      // close() on a socket that is already closing may throw in some runtimes.
    }
    if (stable) this.attempt = 0;
    this.scheduleRetry();
  }

  private teardown(reason: string): void {
    const ws = this.ws;
    this.ws = undefined;
    this.generation++;
    stopTimer(this.connectTimer);
    stopTimer(this.pingTimer);
    stopTimer(this.pongTimer);
    this.pongTimer = undefined;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const cb of pending) cb(null);
    if (ws) this.emit("down", reason);
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt++, this.ctx.timing.backoff, this.ctx.random);
    this.setState(!this.ctx.online() ? "offline" : this.everOpened ? "reconnecting" : "connecting");
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}
