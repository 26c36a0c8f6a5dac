import { describe, expect, it } from "vitest";
import { chosenOnConnect, HIDDEN, publicView, sameView } from "../../src/objects/status";

describe("publicView", () => {
  it("shows the chosen status while connected, offline with last seen otherwise", () => {
    expect(publicView({ chosen: "online", lastSeen: 5 }, true)).toEqual({ status: "online", lastSeen: null });
    expect(publicView({ chosen: "dnd", lastSeen: 5 }, true)).toEqual({ status: "dnd", lastSeen: null });
    expect(publicView({ chosen: "away", lastSeen: 5 }, false)).toEqual({ status: "offline", lastSeen: 5 });
  });

  it("shows invisible as offline", () => {
    expect(publicView({ chosen: "invisible", lastSeen: 7 }, true)).toEqual({ status: "offline", lastSeen: 7 });
  });
});

describe("chosenOnConnect", () => {
  it("resets away, keeps deliberate choices", () => {
    expect(chosenOnConnect("away")).toBe("online");
    expect(chosenOnConnect("dnd")).toBe("dnd");
    expect(chosenOnConnect("invisible")).toBe("invisible");
    expect(chosenOnConnect("online")).toBe("online");
  });
});

describe("sameView", () => {
  it("compares status and last seen", () => {
    expect(sameView(null, HIDDEN)).toBe(false);
    expect(sameView({ status: "offline", lastSeen: null }, HIDDEN)).toBe(true);
    expect(sameView({ status: "offline", lastSeen: 1 }, HIDDEN)).toBe(false);
  });
});
