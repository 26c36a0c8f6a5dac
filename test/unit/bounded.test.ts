/** mapBounded: order kept, never more than `limit` calls in flight. */
import { describe, expect, it } from "vitest";
import { mapBounded } from "../../src/objects/bounded";

describe("mapBounded", () => {
  it("keeps the order of the items and at most `limit` calls in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    const items = Array.from({ length: 237 }, (_, i) => i);
    const out = await mapBounded(items, 50, async (n) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      // Later items finish first, so order comes from the index, not from completion.
      await new Promise((r) => setTimeout(r, (237 - n) % 7));
      inFlight -= 1;
      return n * 2;
    });
    expect(out).toEqual(items.map((n) => n * 2));
    expect(peak).toBe(50);
  });

  it("handles empty lists and odd limits", async () => {
    expect(await mapBounded([], 50, async () => 1)).toEqual([]);
    expect(await mapBounded([1, 2, 3], 0, async (n) => n)).toEqual([1, 2, 3]);
    await expect(mapBounded([1, 2], 5, async (n) => (n === 2 ? Promise.reject(new Error("x")) : n))).rejects.toThrow("x");
  });
});
