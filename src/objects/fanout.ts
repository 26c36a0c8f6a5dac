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
 * No Cloudflare imports: sockets are anything with `send(string)`, timers are injectable.
 */
import type { ServerFrameMessage } from "../protocol";

/** What the sender needs of a socket. */
export interface FanoutSocket {
  send(data: string): void;
}

/** Options of a {@link Fanout}. */
export interface FanoutOptions<S extends FanoutSocket> {
  /** The sockets a frame goes to, read at send time (so a socket that joined later is not sent older queued frames: call `flush()` first). */
  targets: () => Iterable<S>;
  /** How long the window stays open after a send, in ms. Default 5; 0 turns coalescing off (every frame sent at once). */
  windowMs?: number;
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
  | { except?: S; replaceFor?: undefined }
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
  | { except?: S; replaceFor?: undefined }
  | { except?: undefined; replaceFor: { socket: S; json: string } };

/**
 * One queued frame: `json` for every target but `socket`, which gets `own` instead.
 * `json: null` is a frame for `socket` alone; `own: undefined` leaves `socket` out.
 */
interface Pending<S> {
  json: string | null;
  socket?: S;
  own?: string;
}

/** Serializes a `batch` frame from frames already serialized, without parsing them again. */
export function batchJson(frames: readonly string[]): string {
  return `{"type":"batch","frames":[${frames.join(",")}]}`;
}

/** A coalescing fan-out sender. See the module comment for the timing rule. */
export class Fanout<S extends FanoutSocket, F = ServerFrameMessage> {
  private readonly opts: Required<Omit<FanoutOptions<S>, "onSendError">> & Pick<FanoutOptions<S>, "onSendError">;
  private pending: Pending<S>[] = [];
  /** True while a window is open (a timer is pending). */
  private open = false;
  readonly stats: FanoutStats = { frames: 0, singles: 0, batches: 0, sends: 0 };

  constructor(opts: FanoutOptions<S>) {
    this.opts = {
      windowMs: 5,
      maxBatch: 200,
      setTimer: (fn, ms) => {
        setTimeout(fn, ms);
      },
      ...opts,
    };
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
      this.publishJson(json, { except: opts.except });
    }
  }

  /** As {@link publish}, with the frames already serialized. */
  publishJson(json: string, opts: PublishJsonOptions<S> = {}): void {
    this.stats.frames++;
    const p: Pending<S> =
      opts.replaceFor !== undefined
        ? { json, socket: opts.replaceFor.socket, own: opts.replaceFor.json }
        : opts.except !== undefined
          ? { json, socket: opts.except }
          : { json };
    if (!this.open) {
      this.stats.singles++;
      this.deliver(p);
      if (this.opts.windowMs > 0) this.openWindow();
      return;
    }
    this.enqueue(p);
  }

  /**
   * Sends `frame` to `socket` alone, behind whatever is queued (so it cannot overtake a frame
   * published before it), or at once when nothing is. Opens no window. Never throws.
   */
  unicast(socket: S, frame: F): void {
    const json = JSON.stringify(frame);
    this.stats.frames++;
    if (this.pending.length === 0) {
      this.stats.singles++;
      this.sendTo(socket, json);
      return;
    }
    this.enqueue({ json: null, socket, own: json });
  }

  /**
   * Sends what is queued now, in order. Call before a socket starts or stops being a target (e.g.
   * a join's replay), so queued frames reach only the sockets that were targets when published.
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
    // Sockets named by some frame (excepted, replaced, unicast) get their own batch; everyone else
    // shares one string. Rare but for the senders, of whom a window holds a few.
    const own = new Set<S>();
    for (const p of batch) if (p.socket !== undefined) own.add(p.socket);
    for (const ws of this.opts.targets()) {
      if (own.delete(ws)) this.sendFrames(ws, batch, true);
      else if (all !== null) this.sendTo(ws, all);
    }
    // Named sockets that are not (or no longer) targets still get what was meant for them alone.
    for (const ws of own) this.sendFrames(ws, batch, false);
  }

  /** `ws`'s share of a batch: its own frames, and, when it is a target, the frames for everyone. */
  private sendFrames(ws: S, batch: readonly Pending<S>[], isTarget: boolean): void {
    const mine: string[] = [];
    for (const p of batch) {
      if (p.socket === ws) {
        if (p.own !== undefined) mine.push(p.own);
      } else if (isTarget && p.json !== null) {
        mine.push(p.json);
      }
    }
    if (mine.length === 1) this.sendTo(ws, mine[0]);
    else if (mine.length > 1) this.sendTo(ws, batchJson(mine));
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
    for (const ws of this.opts.targets()) {
      if (ws === p.socket) {
        named = true;
        if (p.own !== undefined) this.sendTo(ws, p.own);
      } else {
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
