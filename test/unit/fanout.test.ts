/** The coalescing sender: a lone frame goes at once, a burst goes as one batch, nothing is lost or reordered. */
import { describe, expect, it } from "vitest";
import { batchJson, Fanout, noticeWindowMs } from "../../src/objects/fanout";
import type { RoomMessage, ServerFrameMessage, ServerMessage } from "../../src/protocol";

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

const ack = (seq: number): ServerFrameMessage => ({ type: "ack", id: `c${seq}`, message: (msg(seq) as { message: RoomMessage }).message });

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

  it("a socket that becomes a target mid-window gets only the frames published after; earlier targets share one string", () => {
    const a = new FakeSocket("a");
    const b = new FakeSocket("b");
    const late = new FakeSocket("late");
    const targets = [a, b];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
    f.publish(msg(1));
    f.publish(msg(2));
    f.publish(msg(3));
    // No flush: the window stays open and keeps coalescing.
    f.addTarget(late);
    targets.push(late);
    f.publish(msg(4));
    f.publish(msg(5));
    expect(f.queued).toBe(4);
    timers.tick();
    expect(a.frames()).toEqual([1, 2, 3, 4, 5].map(msg));
    expect(b.raw[1]).toBe(a.raw[1]);
    expect(a.raw[1]).toBe(batchJson([2, 3, 4, 5].map((i) => JSON.stringify(msg(i)))));
    expect(late.frames()).toEqual([msg(4), msg(5)]);
    expect(late.raw).toEqual([batchJson([4, 5].map((i) => JSON.stringify(msg(i))))]);
    // One send per socket for the window, one shared batch.
    expect(f.stats).toMatchObject({ batches: 1, sends: 2 + 3 });
    // A target added after everything queued gets nothing of it, a single frame when one follows.
    const later = new FakeSocket("later");
    f.publish(msg(6));
    f.publish(msg(7));
    f.addTarget(later);
    targets.push(later);
    f.publish(msg(8));
    timers.tick();
    expect(later.raw).toEqual([JSON.stringify(msg(8))]);
    expect(late.frames()).toEqual([4, 5, 6, 7, 8].map(msg));
    // A lone queued frame (flushed without a batch) skips a target added after it too.
    const last = new FakeSocket("last");
    timers.tick();
    f.publish(msg(9));
    f.publish(msg(10));
    f.addTarget(last);
    targets.push(last);
    timers.tick();
    expect(last.raw).toEqual([]);
    expect(a.frames().at(-1)).toEqual(msg(10));
  });

  it("a join storm inside one window: each joiner gets the frames after its join (its own announcement excepted), sent once per window", () => {
    const old = [new FakeSocket("o1"), new FakeSocket("o2")];
    const joiners = Array.from({ length: 20 }, (_, i) => new FakeSocket(`j${i}`));
    const targets: FakeSocket[] = [...old];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
    const joinFrame = (i: number): ServerFrameMessage => ({ type: "system", roomId: "r", event: "join", userId: `j${i}`, name: `j${i}`, at: i });
    f.publish(msg(1));
    joiners.forEach((j, i) => {
      f.addTarget(j);
      targets.push(j);
      f.publish(joinFrame(i), { except: j });
      f.publish(msg(i + 2));
    });
    timers.tick();
    // The old sockets got every frame, in two sends (the first frame alone, then one shared batch).
    const everything = [msg(1), ...joiners.flatMap((_, i) => [joinFrame(i), msg(i + 2)])];
    for (const o of old) {
      expect(o.frames()).toEqual(everything);
      expect(o.raw).toHaveLength(2);
    }
    expect(old[1].raw[1]).toBe(old[0].raw[1]);
    joiners.forEach((j, i) => {
      expect(j.frames(), j.name).toEqual([msg(i + 2), ...joiners.slice(i + 1).flatMap((_, k) => [joinFrame(i + 1 + k), msg(i + 3 + k)])]);
      expect(j.raw, j.name).toHaveLength(1);
    });
    expect(f.stats.sends).toBe(2 + 2 + joiners.length);
  });

  it("a target added mid-window still gets what is addressed to it, in publish order", () => {
    const a = new FakeSocket("a");
    const s = new FakeSocket("s");
    const targets = [a];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
    f.publish(msg(1));
    f.publish(msg(2));
    f.unicast(s, ack(0));
    f.addTarget(s);
    targets.push(s);
    f.publish(msg(3), { replaceFor: { socket: s, frame: ack(3) } });
    f.publish(msg(4));
    timers.tick();
    expect(s.frames()).toEqual([ack(0), ack(3), msg(4)]);
    expect(a.frames()).toEqual([1, 2, 3, 4].map(msg));
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

  it("replaceFor: the sender gets its ack in the message's place, at once when idle, in order when queued", () => {
    const sender = new FakeSocket("sender");
    const b = new FakeSocket("b");
    const c = new FakeSocket("c");
    const timers = manualTimers();
    const f = new Fanout({ targets: () => [sender, b, c], setTimer: timers.setTimer });
    // Idle: both go out at once, one copy each; the sender gets no `message` besides its ack.
    f.publish(msg(1), { replaceFor: { socket: sender, frame: ack(1) } });
    expect(sender.frames()).toEqual([ack(1)]);
    expect(b.frames()).toEqual([msg(1)]);
    expect(c.raw[0]).toBe(b.raw[0]);
    expect(f.stats).toMatchObject({ frames: 1, singles: 1, sends: 3 });
    // Window open: another user's message is queued, then the sender's; the ack must not overtake it.
    f.publish(msg(2));
    f.publish(msg(3), { replaceFor: { socket: sender, frame: ack(3) } });
    expect(sender.raw).toHaveLength(1);
    timers.tick();
    expect(sender.frames()).toEqual([ack(1), msg(2), ack(3)]);
    expect(b.frames()).toEqual([msg(1), msg(2), msg(3)]);
    // Everyone but the sender still shares one batch string.
    expect(c.raw[1]).toBe(b.raw[1]);
    expect(b.raw[1]).toBe(batchJson([msg(2), msg(3)].map((m) => JSON.stringify(m))));
    expect(sender.raw[1]).toBe(batchJson([msg(2), ack(3)].map((m) => JSON.stringify(m))));
  });

  it("replaceFor reaches its socket even when it is not (or no longer) a target", () => {
    const a = new FakeSocket("a");
    const gone = new FakeSocket("gone");
    const targets: FakeSocket[] = [a];
    const timers = manualTimers();
    const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
    f.publish(msg(1), { replaceFor: { socket: gone, frame: ack(1) } });
    expect(gone.frames()).toEqual([ack(1)]);
    targets.push(gone);
    f.publish(msg(2));
    f.publish(msg(3), { replaceFor: { socket: gone, frame: ack(3) } });
    targets.pop();
    timers.tick();
    // Not a target at flush: only what was meant for it alone.
    expect(gone.frames()).toEqual([ack(1), ack(3)]);
    expect(a.frames()).toEqual([msg(1), msg(2), msg(3)]);
  });

  it("unicast goes behind what is queued, or at once when nothing is, without opening a window", () => {
    const a = new FakeSocket("a");
    const b = new FakeSocket("b");
    const timers = manualTimers();
    const f = new Fanout({ targets: () => [a, b], setTimer: timers.setTimer });
    f.unicast(a, ack(9));
    expect(a.frames()).toEqual([ack(9)]);
    expect(timers.pending).toBe(0);
    f.publish(msg(1));
    f.publish(msg(2));
    f.unicast(a, ack(1));
    expect(a.frames()).toEqual([ack(9), msg(1)]);
    timers.tick();
    expect(a.frames()).toEqual([ack(9), msg(1), msg(2), ack(1)]);
    expect(b.frames()).toEqual([msg(1), msg(2)]);
  });

  it("delivers the same frames per socket, in the same order, batched or one by one, with replaced, excepted and unicast frames", () => {
    const names = ["s0", "s1", "s2", "s3"];
    type Op = { frame: ServerFrameMessage; to?: number; replace?: { at: number; frame: ServerFrameMessage }; except?: number };
    const ops: Op[] = [];
    for (let i = 1; i <= 60; i++) {
      const k = i % names.length;
      if (i % 7 === 0) ops.push({ frame: { type: "typing", userId: names[k], on: true, roomId: "r" }, except: k });
      else if (i % 11 === 0) ops.push({ frame: ack(i), to: k });
      else ops.push({ frame: msg(i), replace: { at: k, frame: ack(i) } });
    }
    const run = (tickEvery: number, maxBatch: number) => {
      const socks = names.map((n) => new FakeSocket(n));
      // Late sockets become targets along the way; they only ever get the frames published after.
      const lates = [9, 23, 24, 41].map((at) => ({ at, sock: new FakeSocket(`late${at}`) }));
      const targets = [...socks];
      const t = manualTimers();
      const f = new Fanout({ targets: () => targets, setTimer: t.setTimer, maxBatch });
      ops.forEach((op, i) => {
        for (const l of lates)
          if (l.at === i) {
            f.addTarget(l.sock);
            targets.push(l.sock);
          }
        if (op.to !== undefined) f.unicast(socks[op.to], op.frame);
        else if (op.replace) f.publish(op.frame, { replaceFor: { socket: socks[op.replace.at], frame: op.replace.frame } });
        else f.publish(op.frame, { except: op.except === undefined ? undefined : socks[op.except] });
        if (i % tickEvery === tickEvery - 1) t.tick();
      });
      t.tick();
      t.tick();
      return { socks, lates };
    };
    const { socks: single, lates: singleLates } = run(1, 200);
    const { socks: batched, lates: batchedLates } = run(13, 8);
    batchedLates.forEach((l, k) => {
      expect(l.sock.frames(), l.sock.name).toEqual(singleLates[k].sock.frames());
      const later = ops.slice(l.at).flatMap((op) => (op.to !== undefined ? [] : [op.frame]));
      expect(l.sock.frames(), l.sock.name).toEqual(later);
    });
    expect(batched[0].raw.length).toBeLessThan(single[0].raw.length);
    expect(batched[0].raw.some((r) => r.startsWith('{"type":"batch"'))).toBe(true);
    for (let k = 0; k < names.length; k++) {
      expect(batched[k].frames(), names[k]).toEqual(single[k].frames());
      // What each socket should see: its own ack in place of its message, nothing of its own typing.
      const expected = ops.flatMap((op) => {
        if (op.to !== undefined) return op.to === k ? [op.frame] : [];
        if (op.replace) return [op.replace.at === k ? op.replace.frame : op.frame];
        return op.except === k ? [] : [op.frame];
      });
      expect(single[k].frames(), names[k]).toEqual(expected);
    }
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
  describe("lazy notices (join and leave)", () => {
    const notice = (i: number): ServerFrameMessage => ({ type: "system", roomId: "r", event: "join", userId: `u${i}`, name: `U${i}`, at: i });

    it("a lazy notice published while idle waits for company: a storm of them is one send per socket", () => {
      const socks = [new FakeSocket("a"), new FakeSocket("b")];
      const timers = manualTimers();
      const f = new Fanout({ targets: () => socks, setTimer: timers.setTimer });
      for (let i = 1; i <= 10; i++) f.publish(notice(i), { lazy: true });
      expect(socks.map((s) => s.raw.length)).toEqual([0, 0]);
      expect(timers.pending).toBe(1);
      timers.tick();
      expect(socks.map((s) => s.raw.length)).toEqual([1, 1]);
      expect(socks[0].frames()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(notice));
      expect(timers.pending).toBe(0);
    });

    it("never delays anything else: a message takes the waiting notices along, in order, at once", () => {
      const a = new FakeSocket("a");
      const sender = new FakeSocket("sender");
      const timers = manualTimers();
      const f = new Fanout({ targets: () => [a, sender], setTimer: timers.setTimer });
      f.publish(notice(1), { lazy: true });
      f.publish(msg(2), { replaceFor: { socket: sender, frame: ack(2) } });
      expect(a.frames()).toEqual([notice(1), msg(2)]);
      expect(a.raw).toHaveLength(1);
      expect(sender.frames()).toEqual([notice(1), ack(2)]);
      // The lazy timer that fires later finds nothing left to send.
      timers.tick();
      timers.tick();
      expect(a.raw).toHaveLength(1);
    });

    it("a unicast answer and flush() send the waiting notices first", () => {
      const a = new FakeSocket("a");
      const timers = manualTimers();
      const f = new Fanout({ targets: () => [a], setTimer: timers.setTimer });
      f.publish(notice(1), { lazy: true });
      f.unicast(a, ack(5));
      expect(a.frames()).toEqual([notice(1), ack(5)]);
      f.publish(notice(2), { lazy: true });
      f.flush();
      expect(a.frames()).toEqual([notice(1), ack(5), notice(2)]);
    });

    it("a socket that joins while a notice waits does not get it (its state already covers it), an except socket neither", () => {
      const a = new FakeSocket("a");
      const joiner = new FakeSocket("joiner");
      const targets = [a];
      const timers = manualTimers();
      const f = new Fanout({ targets: () => targets, setTimer: timers.setTimer });
      f.publish(notice(1), { lazy: true, except: a });
      f.addTarget(joiner);
      targets.push(joiner);
      f.publish(notice(2), { lazy: true });
      timers.tick();
      expect(a.frames()).toEqual([notice(2)]);
      expect(joiner.frames()).toEqual([notice(2)]);
    });

    it("waits longer in a larger room: notices cost at most ~2,000 sends per second whatever its size", () => {
      expect([1, 100, 200, 1000, 5000].map(noticeWindowMs)).toEqual([50, 50, 100, 500, 1000]);
      for (const n of [100, 1000, 2000]) expect(n / (noticeWindowMs(n) / 1000)).toBeLessThanOrEqual(2000);
      // The wait is read when a notice starts waiting, from the room's size then.
      const waits: number[] = [];
      let size = 10;
      const a = new FakeSocket("a");
      const f = new Fanout({ targets: () => [a], setTimer: (fn, ms) => (waits.push(ms), fn()), lazyWindowMs: () => noticeWindowMs(size) });
      f.publish(notice(1), { lazy: true });
      size = 1000;
      f.publish(notice(2), { lazy: true });
      expect(waits).toEqual([50, 500]);
      expect(a.frames()).toEqual([notice(1), notice(2)]);
    });

    it("with coalescing off (windowMs 0) a lazy notice goes out at once", () => {
      const a = new FakeSocket("a");
      const timers = manualTimers();
      const f = new Fanout({ targets: () => [a], setTimer: timers.setTimer, windowMs: 0 });
      f.publish(notice(1), { lazy: true });
      expect(a.frames()).toEqual([notice(1)]);
      expect(timers.pending).toBe(0);
    });
  });
});
