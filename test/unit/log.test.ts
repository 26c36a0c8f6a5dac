import { afterEach, describe, expect, it, vi } from "vitest";
import { errorFields, logError } from "../../src/log";

function captured(spy: { mock: { calls: unknown[][] } }): Record<string, unknown>[] {
  return spy.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
}

describe("logError", () => {
  afterEach(() => vi.restoreAllMocks());

  it("writes one JSON line with the message, the fields, the error and its stack", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const err = new TypeError("boom");
    logError("media: R2 delete failed", err, { mediaId: "m1", requestId: "r1" });
    const [line] = captured(spy);
    expect(line).toMatchObject({ level: "error", msg: "media: R2 delete failed", mediaId: "m1", requestId: "r1", error: "TypeError: boom" });
    expect(line.stack).toBe(err.stack);
    expect(String(line.stack)).toContain("boom");
  });

  it("logs a condition without an error, and non-Error throws as text", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    logError("media: R2 object missing", undefined, { mediaId: "m2" });
    logError("odd throw", { code: 7 });
    const [a, b] = captured(spy);
    expect(a).toEqual({ level: "error", msg: "media: R2 object missing", mediaId: "m2" });
    expect(b).toEqual({ level: "error", msg: "odd throw", error: '{"code":7}' });
  });

  it("never throws, whatever the fields or the error hold", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => logError("cycle", cyclic, { big: 1n, cyclic })).not.toThrow();
    const [line] = captured(spy);
    expect(line).toMatchObject({ level: "error", msg: "cycle", unloggableFields: true });
    expect(errorFields(Symbol("s")).error).toContain("Symbol");
  });
});
