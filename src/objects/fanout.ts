/**
 * The coalescing sender used to fan frames out to many sockets (the ChatRoom; the Inbox can reuse it).
 *
 * Each frame is serialized once and the same string goes to every socket. A frame that arrives
 * while the sender is idle goes out at once. Sending opens a short window; frames published
 * inside it are queued and go out together as one `batch` frame when the window closes, and the
 * window reopens while traffic continues. So a lone message is never delayed, and under load the
 * per-socket `send` calls (the cost that bounds fan-out) drop from one per message to one per
 * window. When the window closes with nothing queued the sender goes idle: no timer outlives a
 * burst, so an idle object can still hibernate.
 *
 * One socket may get something else in a frame's place (`replaceFor`: the sender's `ack`, which
 * carries the message) or nothing (`except`: the typist), and a socket may be sent a frame of its
 * own (`unicast`: a duplicate's `ack`). These take their place in the same queue, so whatever a
 * socket receives arrives in publish order: an `ack` never overtakes a message published before it.
 *
 * Which queued frames a target gets depends on when it became one: every frame gets the next number
 * of a publish counter, and `addTarget(socket)` records the counter for the socket. At flush a target
 * gets only the frames published after that, so a socket that joins while a window is open receives
 * none of the frames queued before (the state it is sent on joining already covers them), and the
 * window goes on coalescing: joins need no flush. Targets whose view is the whole batch (the common
 * case) share one string; a late target gets its own sub-batch, a single frame, or nothing.
 *
 * A frame may also be published `lazy` (the room's join and leave notices): instead of going out at
 * once when the sender is idle, it waits up to `lazyWindowMs` for others (longer in larger rooms:
 * `noticeWindowMs`), so a join storm (a thousand clients reconnecting) costs one send per socket per
 * lazy window instead of one per socket per join. It never delays anything else: a frame published normally while lazy ones wait
 * takes them along in its own send, in order, and `flush()` and `unicast` send them first too.
 *
 * No Cloudflare imports: sockets are anything with `send(string)`, timers are injectable.
 */
import type { ServerFrameMessage } from "../protocol";

/** What the sender needs of a socket. */
export interface FanoutSocket {
  send(data: string): void;
}

/** Options of a {@link Fanout}. */
export interface FanoutOptions<S extends FanoutSocket> {
  /**
   * The sockets a frame goes to, read at send time. A target gets the frames published after it was
   * passed to `addTarget` (all queued frames, if it never was: e.g. sockets rebuilt after a wake-up,
   * when nothing is queued).
   */
  targets: () => Iterable<S>;
  /** How long the window stays open after a send, in ms. Default 5; 0 turns coalescing off (every frame sent at once). */
  windowMs?: number;
  /**
   * How long a `lazy` frame published while idle may wait for company, in ms (a number, or read at
   * each wait, e.g. {@link noticeWindowMs} of the room's size). Default 50; with `windowMs` 0 (no
   * coalescing) lazy frames go out at once too.
   */
  lazyWindowMs?: number | (() => number);
  /** Queued frames that force an early flush, so one batch stays bounded. Default 200. */
  maxBatch?: number;
  /** Called when `send` throws (the socket is closing); the other sockets still get the frame. */
  onSendError?: (socket: S, err: unknown) => void;
  /** Timer hook for tests; defaults to `setTimeout`. */
  setTimer?: (fn: () => void, ms: number) => void;
}

/** Counters for tests and local measurements. */
export interface FanoutStats {
  /** Frames published. */
  frames: number;
  /** Frames sent alone. */
  singles: number;
  /** `batch` frames sent (each counted once, not per socket). */
  batches: number;
  /** `send` calls made. */
  sends: number;
}

/** How one published frame is addressed. `except` and `replaceFor` name one socket each; give one of them at most. */
export type PublishOptions<S, F> =
  | {
      except?: S;
      replaceFor?: undefined;
      /** A notice that may wait up to `lazyWindowMs` to share a send with others (see the module comment). */
      lazy?: boolean;
    }
  | {
      except?: undefined;
      /**
       * `socket` gets `frame` instead of the published one, at the same place in its stream, whether
       * or not it is a target: it is an answer (the sender's `ack`), not a broadcast.
       */
      replaceFor: { socket: S; frame: F };
    };

/** As {@link PublishOptions}, with frames already serialized. */
export type PublishJsonOptions<S> =
  | { except?: S; replaceFor?: undefined; lazy?: boolean }
  | { except?: undefined; replaceFor: { socket: S; json: string } };

/**
 * One queued frame: `json` for every target but `socket`, which gets `own` instead.
 * `json: null` is a frame for `socket` alone; `own: undefined` leaves `socket` out.
 */
interface Pending<S> {
  /** The publish counter's value for this frame: targets marked at or after it do not get `json`. */
  n: number;
  json: string | null;
  socket?: S;
  own?: string;
}

/** The shortest wait of a join or leave notice for company (small rooms), in ms. */
export const NOTICE_WINDOW_MIN_MS = 50;
/** The longest (very large rooms), in ms. */
export const NOTICE_WINDOW_MAX_MS = 1000;
/** Wait per socket of the room, in ms: notices then cost at most 1000 / this sends per second. */
export const NOTICE_MS_PER_SOCKET = 0.5;

/**
 * How long a join or leave notice waits for company in a room of `sockets` sockets: 50 ms, or half a
 * millisecond per socket (500 ms at 1,000), at most a second. A flush of waiting notices costs one
 * send per socket, so in a join storm notices cost at most about 2,000 sends per second however
 * large the room, where a fixed 50 ms window cost 20 per socket per second (20,000 at 1,000 sockets,
 * a quarter of the room's time in the 2026-11-29 profile). Anything else published takes them along
 * at once, so they are never later than the next message.
 */
export function noticeWindowMs(sockets: number): number {
  return Math.min(NOTICE_WINDOW_MAX_MS, Math.max(NOTICE_WINDOW_MIN_MS, sockets * NOTICE_MS_PER_SOCKET));
}

/** Serializes a `batch` frame from frames already serialized, without parsing them again. */
export function batchJson(frames: readonly string[]): string {
  return `{"type":"batch","frames":[${frames.join(",")}]}`;
}

/** A coalescing fan-out sender. See the module comment for the timing rule. */
export class Fanout<S extends FanoutSocket, F = ServerFrameMessage> {
  private readonly opts: Required<Omit<FanoutOptions<S>, "onSendError">> & Pick<FanoutOptions<S>, "onSendError">;
  private pending: Pending<S>[] = [];
  /** Publish counter: the number of the last frame published (or unicast). */
  private published = 0;
  /** Where each socket given to `addTarget` became a target (the counter then). In memory only, like the queue. */
  private readonly since = new WeakMap<S, number>();
  /** The highest mark in `since`: frames numbered above it go to every target. */
  private lastMark = 0;
  /** True while a window is open (a timer is pending). */
  private open = false;
  /** True while a lazy timer is pending (only lazy frames are queued, no window open). */
  private lazyTimer = false;
  readonly stats: FanoutStats = { frames: 0, singles: 0, batches: 0, sends: 0 };

  constructor(opts: FanoutOptions<S>) {
    this.opts = {
      windowMs: 5,
      lazyWindowMs: 50,
      maxBatch: 200,
      setTimer: (fn, ms) => {
        setTimeout(fn, ms);
      },
      ...opts,
    };
  }

  /**
   * Records that `socket` becomes a target now, before it appears in `targets()`: it will get the
   * frames published from now on and none of those already queued (which the caller's state sent to
   * it directly, e.g. a join's `room_state`, reflects). Frames addressed to it (`replaceFor`,
   * `unicast`) reach it whenever they were published. Call it again when the socket becomes a target
   * again after it stopped being one.
   */
  addTarget(socket: S): void {
    this.since.set(socket, this.published);
    this.lastMark = this.published;
  }

  /** Frames queued for the next flush. */
  get queued(): number {
    return this.pending.length;
  }

  /**
   * Sends `frame` to every target (but `except`, e.g. the typing user's own socket, and but
   * `replaceFor.socket`, which gets `replaceFor.frame` in its place): at once when idle, else queued
   * into the window's batch. Never throws.
   */
  publish(frame: F, opts: PublishOptions<S, F> = {}): void {
    const json = JSON.stringify(frame);
    if (opts.replaceFor !== undefined) {
      this.publishJson(json, { replaceFor: { socket: opts.replaceFor.socket, json: JSON.stringify(opts.replaceFor.frame) } });
    } else {
      this.publishJson(json, { except: opts.except, lazy: opts.lazy });
    }
  }

  /** As {@link publish}, with the frames already serialized. */
  publishJson(json: string, opts: PublishJsonOptions<S> = {}): void {
    this.stats.frames++;
    const n = ++this.published;
    const p: Pending<S> =
      opts.replaceFor !== undefined
        ? { n, json, socket: opts.replaceFor.socket, own: opts.replaceFor.json }
        : opts.except !== undefined
          ? { n, json, socket: opts.except }
          : { n, json };
    if (this.open) return this.enqueue(p);
    const lazy = opts.replaceFor === undefined && opts.lazy === true;
    const lazyMs = lazy && typeof this.opts.lazyWindowMs === "function" ? this.opts.lazyWindowMs() : this.opts.lazyWindowMs;
    if (lazy && this.opts.windowMs > 0 && typeof lazyMs === "number" && lazyMs > 0) {
      // Idle: the notice waits for company (other notices) for up to lazyWindowMs.
      this.enqueue(p);
      if (!this.lazyTimer) {
        this.lazyTimer = true;
        this.opts.setTimer(() => this.onLazyEnd(), lazyMs);
      }
      return;
    }
    if (this.pending.length > 0) {
      // Lazy notices are waiting: they go out now, with this frame after them, in one send.
      this.pending.push(p);
      this.flush();
    } else {
      this.stats.singles++;
      this.deliver(p);
    }
    if (this.opts.windowMs > 0) this.openWindow();
  }

  /**
   * Sends `frame` to `socket` alone, behind whatever is queued (so it cannot overtake a frame
   * published before it), or at once when nothing is. Opens no window. Never throws.
   */
  unicast(socket: S, frame: F): void {
    const json = JSON.stringify(frame);
    this.stats.frames++;
    const n = ++this.published;
    // Lazy notices waiting with no window open go out first: an answer is never held for them.
    if (!this.open) this.flush();
    if (this.pending.length === 0) {
      this.stats.singles++;
      this.sendTo(socket, json);
      return;
    }
    this.enqueue({ n, json: null, socket, own: json });
  }

  /**
   * Sends what is queued now, in order. Call before a socket stops being a target, so that it still
   * gets what was published while it was one, or before sending a target something directly that
   * must not overtake what is queued for it. (Becoming a target needs no flush: see `addTarget`.)
   */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    if (batch.length === 1) {
      this.stats.singles++;
      this.deliver(batch[0]);
      return;
    }
    this.stats.batches++;
    const shared = batch.flatMap((p) => (p.json === null ? [] : [p.json]));
    const all = shared.length > 0 ? batchJson(shared) : null;
    // Targets marked before the first queued frame see the whole batch; a later mark can only be one
    // made during this window. Skips the per-socket lookup in the common case.
    const marked = this.lastMark >= batch[0].n;
    // Sockets named by some frame (excepted, replaced, unicast) get their own batch, and so do targets
    // that became targets inside the window; everyone else shares one string. Rare but for the
    // senders and the joiners, of whom a window holds a few.
    const own = new Set<S>();
    for (const p of batch) if (p.socket !== undefined) own.add(p.socket);
    for (const ws of this.opts.targets()) {
      const from = marked ? this.sinceOf(ws) : 0;
      if (own.delete(ws) || from >= batch[0].n) this.sendFrames(ws, batch, from);
      else if (all !== null) this.sendTo(ws, all);
    }
    // Named sockets that are not (or no longer) targets still get what was meant for them alone.
    for (const ws of own) this.sendFrames(ws, batch, null);
  }

  /**
   * `ws`'s share of a batch: its own frames, and, when it is a target (`from`: where it became one),
   * the frames for everyone published after it became one.
   */
  private sendFrames(ws: S, batch: readonly Pending<S>[], from: number | null): void {
    const mine: string[] = [];
    for (const p of batch) {
      if (p.socket === ws) {
        if (p.own !== undefined) mine.push(p.own);
      } else if (from !== null && p.n > from && p.json !== null) {
        mine.push(p.json);
      }
    }
    if (mine.length === 1) this.sendTo(ws, mine[0]);
    else if (mine.length > 1) this.sendTo(ws, batchJson(mine));
  }

  private sinceOf(ws: S): number {
    return this.since.get(ws) ?? 0;
  }

  private enqueue(p: Pending<S>): void {
    this.pending.push(p);
    if (this.pending.length >= this.opts.maxBatch) this.flush();
  }

  private deliver(p: Pending<S>): void {
    if (p.json === null) {
      if (p.socket !== undefined && p.own !== undefined) this.sendTo(p.socket, p.own);
      return;
    }
    let named = false;
    // Only a frame still queued can be older than some target's mark.
    const marked = this.lastMark >= p.n;
    for (const ws of this.opts.targets()) {
      if (ws === p.socket) {
        named = true;
        if (p.own !== undefined) this.sendTo(ws, p.own);
      } else if (!marked || this.sinceOf(ws) < p.n) {
        this.sendTo(ws, p.json);
      }
    }
    if (!named && p.socket !== undefined && p.own !== undefined) this.sendTo(p.socket, p.own);
  }

  private sendTo(ws: S, json: string): void {
    this.stats.sends++;
    try {
      ws.send(json);
    } catch (err) {
      this.opts.onSendError?.(ws, err);
    }
  }

  private openWindow(): void {
    this.open = true;
    this.opts.setTimer(() => this.onWindowEnd(), this.opts.windowMs);
  }

  private onLazyEnd(): void {
    this.lazyTimer = false;
    // A window opened meanwhile has taken the notices along (or will, when it closes).
    if (!this.open) this.flush();
  }

  private onWindowEnd(): void {
    if (this.pending.length === 0) {
      this.open = false;
      return;
    }
    this.flush();
    // Traffic is still coming: keep coalescing for one more window.
    this.opts.setTimer(() => this.onWindowEnd(), this.opts.windowMs);
  }
}
