import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { decodeCursor, encodeCursor, takePage } from "../../src/pagination";

describe("pagination", () => {
  it("cursors are base64url of the key: btoa's for ASCII keys, any UTF-8 key round-trips", () => {
    expect(encodeCursor("general")).toBe(btoa("general").replace(/=+$/, ""));
    for (const key of ["general", "1700000000000.auth0|x", "ünï😀", "?>?>"]) {
      const c = encodeCursor(key);
      expect(c).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(decodeCursor(c, () => true)).toBe(key);
    }
  });

  it("a cursor that is not base64, not UTF-8 or not a valid key is a 400 bad_request", () => {
    for (const bad of ["%%%", encodeCursor("nope"), "_w"]) {
      let err: unknown;
      try {
        decodeCursor(bad, (k) => k === "yes");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe("bad_request");
    }
  });

  it("takePage keeps limit rows and a cursor only when a row was left over", () => {
    expect(takePage([1, 2, 3], 2, String)).toEqual({ items: [1, 2], nextCursor: encodeCursor("2") });
    expect(takePage([1, 2], 2, String)).toEqual({ items: [1, 2], nextCursor: null });
    expect(takePage([], 2, String)).toEqual({ items: [], nextCursor: null });
  });
});
