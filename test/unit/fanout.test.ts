/** The coalescing sender: a lone frame goes at once, a burst goes as one batch, nothing is lost or reordered. */
import { describe, expect, it } from "vitest";
import { batchJson, Fanout } from "../../src/objects/fanout";
import type { ServerFrameMessage, ServerMessage } from "../../src/protocol";

class FakeSocket {
  raw: string[] = [];
  constructor(
    readonly name: string,
    private readonly broken = false,
  ) {}
  send(data: string): void {
    if (this.broken) throw new Error("closed");
    this.raw.push(data);
  }
  /** Frames received, batches flattened, in order. */
  frames(): ServerFrameMessage[] {
    return this.raw.flatMap((r) => {
      const m = JSON.parse(r) as ServerMessage;
      return m.type === "batch" ? m.frames : [m];
    });
  }
}

/** Manual timers: `tick()` fires what is due. */
function manualTimers() {
  const queue: (() => void)[] = [];
  return {
    setTimer: (fn: () => void) => {
      queue.push(fn);
    },
    tick() {
      const due = queue.splice(0);
      for (const fn of due) fn();
    },
    get pending() {
      return queue.length;
    },
  };
}

const msg = (seq: number): ServerFrameMessage => ({
  type: "message",
  message: { id: `m${seq}`, roomId: "r", seq, userId: "u", userName: "U", clientMsgId: `c${seq}`, text: `t${seq}`, createdAt: seq },
});

describe("Fanout", () => {
  it("sends a lone frame at once, one string shared by every socket, and goes idle after the window", () => {
    const socks = [new FakeSocket("a"), new FakeSocket("b")];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => socks, setTimer: timers.setTimer });
    f.publish(msg(1));
    expect(socks.map((s) => s.raw.length)).toEqual([1, 1]);
    expect(socks[0].raw[0]).toBe(socks[1].raw[0]);
    expect(JSON.parse(socks[0].raw[0])).toEqual(msg(1));
    timers.tick();
    expect(timers.pending).toBe(0);
    // Idle again: the next lone frame also goes at once.
    f.publish(msg(2));
    expect(socks[0].raw.map((r) => JSON.parse(r).type)).toEqual(["message", "message"]);
    expect(f.stats).toMatchObject({ frames: 2, singles: 2, batches: 0, sends: 4 });
  });

  it("coalesces frames arriving within the window into one batch frame", () => {
    const socks = [new FakeSocket("a"), new FakeSocket("b"), new FakeSocket("c")];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => socks, setTimer: timers.setTimer });
    for (let i = 1; i <= 10; i++) f.publish(msg(i));
    // The first went alone; nine wait for the window.
    expect(socks[0].raw).toHaveLength(1);
    expect(f.queued).toBe(9);
    timers.tick();
    expect(socks[0].raw).toHaveLength(2);
    expect(JSON.parse(socks[0].raw[1]).type).toBe("batch");
    expect(socks[0].raw[1]).toBe(batchJson([2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => JSON.stringify(msg(i)))));
    // The window stays open after a flush while traffic continues, then closes when it stops.
    expect(timers.pending).toBe(1);
    timers.tick();
    expect(timers.pending).toBe(0);
    expect(f.stats).toMatchObject({ frames: 10, singles: 1, batches: 1, sends: 6 });
  });

  it("delivers the same frames in the same order batched or one by one", () => {
    const frames = Array.from({ length: 57 }, (_, i) => msg(i + 1));
    // One by one: a window closes after every frame.
    const single = new FakeSocket("single");
    const t1 = manualTimers();
    const f1 = new Fanout({ targets: () => [single], setTimer: t1.setTimer });
    for (const fr of frames) {
      f1.publish(fr);
      t1.tick();
    }
    // Bursty: windows close at irregular points, and a small maxBatch forces early flushes.
    const batched = new FakeSocket("batched");
    const t2 = manualTimers();
    const f2 = new Fanout({ targets: () => [batched], setTimer: t2.setTimer, maxBatch: 8 });
    frames.forEach((fr, i) => {
      f2.publish(fr);
      if (i % 13 === 12) t2.tick();
    });
    t2.tick();
    t2.tick();
    expect(single.raw).toHaveLength(57);
    expect(batched.raw.length).toBeLessThan(20);
    expect(batched.raw.some((r) => r.startsWith('{"type":"batch"'))).toBe(true);
    expect(batched.frames()).toEqual(single.frames());
    expect(single.frames()).toEqual(frames);
  });

  it("flush() sends the queue now, so a socket joining afterwards gets none of it", () => {
    const a = new FakeSocket("a");
    const late = new FakeSocket("late");
    const targets = [a];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
    f.publish(msg(1));
    f.publish(msg(2));
    f.publish(msg(3));
    f.flush();
    targets.push(late);
    f.publish(msg(4));
    timers.tick();
    expect(a.frames()).toEqual([msg(1), msg(2), msg(3), msg(4)]);
    expect(late.frames()).toEqual([msg(4)]);
  });

  it("leaves out the excepted socket, also inside batches", () => {
    const a = new FakeSocket("a");
    const b = new FakeSocket("b");
    const c = new FakeSocket("c");
    const timers = manualTimers();
    const f = new Fanout({ targets: () => [a, b, c], setTimer: timers.setTimer });
    const typing: ServerFrameMessage = { type: "typing", userId: "a", on: true, roomId: "r" };
    f.publish(msg(1));
    f.publish(typing, { except: a });
    f.publish(msg(2));
    timers.tick();
    expect(a.frames()).toEqual([msg(1), msg(2)]);
    expect(b.frames()).toEqual([msg(1), typing, msg(2)]);
    expect(c.raw[1]).toBe(b.raw[1]);
    // Alone: sent at once to everyone else.
    timers.tick();
    f.publish(typing, { except: a });
    expect(a.frames()).toHaveLength(2);
    expect(b.frames()).toHaveLength(4);
  });

  it("with a zero window sends every frame at once", () => {
    const a = new FakeSocket("a");
    const timers = manualTimers();
    const f = new Fanout({ targets: () => [a], setTimer: timers.setTimer, windowMs: 0 });
    for (let i = 1; i <= 5; i++) f.publish(msg(i));
    expect(a.raw).toHaveLength(5);
    expect(timers.pending).toBe(0);
    expect(a.frames()).toEqual([1, 2, 3, 4, 5].map(msg));
  });

  it("keeps sending to the others when one socket throws", () => {
    const ok = new FakeSocket("ok");
    const broken = new FakeSocket("broken", true);
    const errors: string[] = [];
    const f = new Fanout<FakeSocket>({ targets: () => [broken, ok], setTimer: () => {}, onSendError: (s) => errors.push(s.name) });
    f.publish(msg(1));
    expect(ok.frames()).toEqual([msg(1)]);
    expect(errors).toEqual(["broken"]);
  });

  it("uses real timers by default and goes idle", async () => {
    const a = new FakeSocket("a");
    const f = new Fanout({ targets: () => [a], windowMs: 1 });
    f.publish(msg(1));
    f.publish(msg(2));
    f.publish(msg(3));
    for (let i = 0; i < 100 && a.raw.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(a.frames()).toEqual([msg(1), msg(2), msg(3)]);
    expect(a.raw).toHaveLength(2);
  });
});
