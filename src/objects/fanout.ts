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

interface Pending<S> {
  json: string;
  except?: S;
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
   * Sends `frame` to every target (but `except`, e.g. the typing user's own socket): at once when
   * idle, else queued into the window's batch. Never throws.
   */
  publish(frame: F, opts: { except?: S } = {}): void {
    this.publishJson(JSON.stringify(frame), opts);
  }

  /** As {@link publish}, with the frame already serialized. */
  publishJson(json: string, opts: { except?: S } = {}): void {
    this.stats.frames++;
    if (!this.open) {
      this.stats.singles++;
      this.deliver(json, opts.except);
      if (this.opts.windowMs > 0) this.openWindow();
      return;
    }
    this.pending.push({ json, except: opts.except });
    if (this.pending.length >= this.opts.maxBatch) this.flush();
  }

  /**
   * Sends what is queued now, in order. Call before a socket starts receiving frames directly
   * (e.g. a join's replay), so queued frames reach only the sockets that were targets when published.
   */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    if (batch.length === 1) {
      this.stats.singles++;
      this.deliver(batch[0].json, batch[0].except);
      return;
    }
    this.stats.batches++;
    const excepted = batch.some((p) => p.except !== undefined);
    const all = batchJson(batch.map((p) => p.json));
    if (!excepted) {
      this.deliver(all);
      return;
    }
    // Rare (typing): sockets excluded from some frames get their own batch; everyone else shares one string.
    const skip = new Set<S>();
    for (const p of batch) if (p.except !== undefined) skip.add(p.except);
    for (const ws of this.opts.targets()) {
      if (!skip.has(ws)) {
        this.sendTo(ws, all);
        continue;
      }
      const own = batch.filter((p) => p.except !== ws).map((p) => p.json);
      if (own.length === 1) this.sendTo(ws, own[0]);
      else if (own.length > 1) this.sendTo(ws, batchJson(own));
    }
  }

  private deliver(json: string, except?: S): void {
    for (const ws of this.opts.targets()) if (ws !== except) this.sendTo(ws, json);
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
