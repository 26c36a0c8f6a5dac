import { describe, expect, it } from "vitest";
import { uptimeOver } from "../../src/uptime";

const H = 3_600_000;
const now = 1_000 * H;

describe("uptimeOver", () => {
  it("is null with no checks and counts coverage", () => {
    expect(uptimeOver([], now, 24 * H, 5 * 60_000, "24h")).toEqual({ window: "24h", checks: 0, failed: 0, uptime: null, coverage: 0 });
  });

  it("counts only checks inside (now - window, now]", () => {
    const samples = [
      { checkedAt: now - 24 * H, ok: false }, // exactly at the edge: outside
      { checkedAt: now - 24 * H + 1, ok: false },
      { checkedAt: now - H, ok: true },
      { checkedAt: now, ok: true },
      { checkedAt: now + 1, ok: false }, // future: ignored
    ];
    const w = uptimeOver(samples, now, 24 * H, 5 * 60_000, "24h");
    expect(w.checks).toBe(3);
    expect(w.failed).toBe(1);
    expect(w.uptime).toBeCloseTo(2 / 3);
    expect(w.coverage).toBeCloseTo(3 / 288);
  });

  it("caps coverage at 1", () => {
    const samples = Array.from({ length: 30 }, (_, i) => ({ checkedAt: now - i * 1000, ok: true }));
    expect(uptimeOver(samples, now, 60_000 * 5 * 10, 5 * 60_000, "x").coverage).toBe(1);
  });
});
