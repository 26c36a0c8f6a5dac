/** Pure room presence: per user, not per socket; heartbeat expiry from attachments and auto-response times. */
import { describe, expect, it } from "vitest";
import { hasOtherJoined, onlineCount, type PresenceSession, presentUsers } from "../../src/objects/chat-room/presence";
import { isExpired, lastActivity, sweep } from "../../src/objects/heartbeat";

function s(connId: string, userId: string, joined = true, lastSeenAt = 0, name = userId): PresenceSession {
  return { connId, userId, name, joined, lastSeenAt, connectedAt: 0 };
}

describe("presence", () => {
  it("lists each joined user once, in order of first join", () => {
    const sessions = [s("1", "bob"), s("2", "alice", true, 0, "Alice"), s("3", "bob"), s("4", "carol", false)];
    expect(presentUsers(sessions)).toEqual([
      { userId: "bob", name: "bob" },
      { userId: "alice", name: "Alice" },
    ]);
    expect(onlineCount(sessions)).toBe(2);
    expect(presentUsers([])).toEqual([]);
  });

  it("knows whether a user has another joined socket (a second tab)", () => {
    const sessions = [s("1", "alice"), s("2", "alice"), s("3", "bob"), s("4", "bob", false)];
    expect(hasOtherJoined(sessions, "alice", "1")).toBe(true);
    expect(hasOtherJoined(sessions, "bob", "3")).toBe(false);
    expect(hasOtherJoined(sessions, "carol", "9")).toBe(false);
  });

  it("takes the latest of frame, auto-answered ping and connection as the last activity", () => {
    expect(lastActivity({ lastSeenAt: 10, connectedAt: 5 }, null)).toBe(10);
    expect(lastActivity({ lastSeenAt: 10, connectedAt: 5 }, 30)).toBe(30);
    expect(lastActivity({ lastSeenAt: 0, connectedAt: 50 }, 30)).toBe(50);
    expect(isExpired({ lastSeenAt: 0, connectedAt: 0 }, 1_000, 46_000, 45_000)).toBe(false);
    expect(isExpired({ lastSeenAt: 0, connectedAt: 0 }, 1_000, 46_001, 45_000)).toBe(true);
  });

  it("sweeps the expired and says when the next one could expire", () => {
    const a = s("a", "alice", true, 1_000);
    const b = s("b", "bob", true, 50_000);
    const c = s("c", "carol", true, 0);
    const { expired, nextAt } = sweep(
      [
        { session: a, autoResponseAt: null },
        { session: b, autoResponseAt: null },
        { session: c, autoResponseAt: 60_000 },
      ],
      70_000,
      45_000,
    );
    expect(expired).toEqual([a]);
    expect(nextAt).toBe(50_000 + 45_000 + 1);
    expect(sweep([], 0, 45_000)).toEqual({ expired: [], nextAt: null });
  });
});
