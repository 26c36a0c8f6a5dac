import { describe, expect, it } from "vitest";
import { compressionOn, NO_EXTENSIONS, upgradeHeaders } from "../../src/objects/upgrade";

describe("upgradeHeaders", () => {
  it("names no extension a client offers unless compression is on, and echoes the subprotocol", () => {
    const off = upgradeHeaders("edge-chat", undefined);
    expect(off.get("Sec-WebSocket-Extensions")).toBe(NO_EXTENSIONS);
    expect(off.get("Sec-WebSocket-Extensions")).not.toMatch(/deflate/);
    expect(off.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
    expect(upgradeHeaders(null, "off").get("Sec-WebSocket-Protocol")).toBeNull();
    const on = upgradeHeaders("edge-chat", "on");
    expect(on.has("Sec-WebSocket-Extensions")).toBe(false);
    expect(on.get("Sec-WebSocket-Protocol")).toBe("edge-chat");
  });

  it("reads WS_COMPRESSION leniently: only on turns it on", () => {
    expect([" ON ", "on", "On"].map(compressionOn)).toEqual([true, true, true]);
    expect(["", "off", "yes", "1", undefined].map(compressionOn)).toEqual([false, false, false, false, false]);
  });
});
