/** The pure token bucket: lazy refill from timestamps, refusals with the time until the next token. */
import { describe, expect, it } from "vitest";
import { type BucketConfig, fullBucket, take } from "../../src/objects/rate-limit";

const cfg: BucketConfig = { burst: 20, refillPerSec: 10 };

describe("token bucket", () => {
  it("allows the burst at once, then refuses with the time until one token refills", () => {
    let state = fullBucket(cfg, 1_000);
    for (let i = 0; i < 20; i++) {
      const r = take(state, cfg, 1_000);
      expect(r.ok).toBe(true);
      state = r.state;
    }
    const refused = take(state, cfg, 1_000);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 100 });
    // Half a token later, half the wait is left.
    const later = take(refused.state, cfg, 1_050);
    expect(later).toMatchObject({ ok: false, retryAfterMs: 50 });
    expect(take(later.state, cfg, 1_100).ok).toBe(true);
  });

  it("refills lazily from the elapsed time, never above the burst", () => {
    const empty = { tokens: 0, at: 0 };
    const r = take(empty, cfg, 60_000);
    expect(r.ok).toBe(true);
    expect(r.state).toEqual({ tokens: 19, at: 60_000 });
  });

  it("sustains exactly the refill rate", () => {
    let state = { tokens: 0, at: 0 };
    let ok = 0;
    // One attempt every 10 ms for 10 s: 10 tokens per second get through.
    for (let t = 10; t <= 10_000; t += 10) {
      const r = take(state, cfg, t);
      state = r.state;
      if (r.ok) ok++;
    }
    // 100 in exact arithmetic; tenths of a token in binary floating point may leave the last one just short.
    expect(ok).toBeGreaterThanOrEqual(99);
    expect(ok).toBeLessThanOrEqual(100);
  });

  it("is a pair of numbers that survives a JSON round trip (the attachment)", () => {
    const state = take(fullBucket(cfg, 5), cfg, 5).state;
    const revived = JSON.parse(JSON.stringify(state));
    expect(take(revived, cfg, 5)).toEqual(take(state, cfg, 5));
  });

  it("ignores a clock that goes backwards", () => {
    const state = { tokens: 0.5, at: 1_000 };
    const r = take(state, cfg, 900);
    expect(r).toMatchObject({ ok: false, retryAfterMs: 50 });
  });

  it("never refills with a zero rate", () => {
    const zero = { burst: 1, refillPerSec: 0 };
    const r = take({ tokens: 0, at: 0 }, zero, 1e9);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.retryAfterMs).toBe(Number.MAX_SAFE_INTEGER);
  });
});
