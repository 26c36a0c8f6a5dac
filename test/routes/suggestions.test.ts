/**
 * GET /api/chat/rooms/suggestions against real D1: the threshold (20 vs 21), stale users, the caller
 * not counted, a brute-force haversine comparison on random users around hard places (antimeridian,
 * high latitudes, a pole), rooms and their order, the proposed room, location sources, bad input,
 * and the `suggestion` notification on the inbox socket (once per area per day).
 */
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ACTIVE_WINDOW_MS, SUGGEST_RADIUS_KM, cellOf, haversineKm, roundLocation } from "../../src/suggestions/geo";
import { notifySuggestion, storeLocation, storedLocation, suggestionsAt } from "../../src/suggestions/location";
import type { ServerMessage } from "../../src/protocol";
import { api, connectWs } from "../helpers";
import { destination, rng } from "../helpers/geo-fixtures";

const PATH = "/api/chat/rooms/suggestions";
const LYON = { lat: 45.76, lon: 4.84 };

interface Body {
  status: string;
  reason: string;
  nearbyUsers: number;
  threshold: number;
  radiusKm: number;
  activeWindowMinutes: number;
  location: { lat: number; lon: number; source: string; updatedAt: number } | null;
  rooms: { id: string; name: string; distanceKm: number; onlineCount: number }[];
  proposed: { name: string; category: string; description: string; lat: number; lon: number } | null;
}

async function suggestionsFor(user: string, at?: { lat: number; lon: number }, cf?: Record<string, string>): Promise<Body> {
  const qs = at ? `?lat=${at.lat}&lon=${at.lon}` : "";
  const res = await api(user, `${PATH}${qs}`, cf ? ({ cf } as RequestInit) : {});
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Body>();
}

/** Stores `n` users at `km(i)` from `center` on random bearings, `ageMs` old. */
async function seedUsers(
  prefix: string,
  center: { lat: number; lon: number },
  n: number,
  opts: { km?: (i: number) => number; ageMs?: number; rand?: () => number } = {},
): Promise<{ id: string; lat: number; lon: number }[]> {
  const rand = opts.rand ?? rng(n * 7919 + prefix.length);
  const now = Date.now();
  const out: { id: string; lat: number; lon: number }[] = [];
  for (let i = 0; i < n; i++) {
    const p = destination(center.lat, center.lon, opts.km ? opts.km(i) : rand() * 40, rand() * 2 * Math.PI);
    const id = `${prefix}-${i}`;
    const stored = await storeLocation(env, id, p, now - (opts.ageMs ?? 0));
    expect(stored).not.toBeNull();
    out.push({ id, ...roundLocation(p.lat, p.lon) });
  }
  return out;
}

async function insertRoom(id: string, at: { lat: number; lon: number } | null, onlineCount = 0): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO rooms (id, name, category, description, lat, lon, cell, created_by, created_at, online_count) VALUES (?, ?, 'local', '', ?, ?, ?, 'sg-test', ?, ?)",
  )
    .bind(id, id, at?.lat ?? null, at?.lon ?? null, at ? cellOf(at.lat, at.lon) : null, Date.now(), onlineCount)
    .run();
}

beforeEach(async () => {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM user_locations"),
    env.DB.prepare("DELETE FROM suggestion_notices"),
    env.DB.prepare("DELETE FROM rooms WHERE lat IS NOT NULL OR created_by = 'sg-test'"),
  ]);
});

describe("GET /api/chat/rooms/suggestions: input", () => {
  it.each([
    ["lat=91&lon=0", /lat/],
    ["lat=-90.5&lon=0", /lat/],
    ["lat=0&lon=180.5", /lon/],
    ["lat=abc&lon=0", /lat/],
    ["lat=NaN&lon=1", /lat/],
    ["lat=Infinity&lon=1", /lat/],
    ["lat=1e1&lon=1", /lat/],
    ["lat=&lon=", /lat/],
    ["lat=10", /together/],
    ["lon=10", /together/],
  ])("answers 400 bad_request for %s and stores nothing", async (qs, message) => {
    const res = await api("sg-bad", `${PATH}?${qs}`);
    expect(res.status).toBe(400);
    const body = await res.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe("bad_request");
    expect(body.error.message).toMatch(message);
    expect(await storedLocation(env, "sg-bad")).toBeNull();
  });

  it("needs a token", async () => {
    expect((await api(null, `${PATH}?lat=1&lon=1`)).status).toBe(401);
  });

  it("reports the D1 steps it ran in Server-Timing", async () => {
    const res = await api("sg-timing", `${PATH}?lat=1&lon=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Server-Timing")).toMatch(/^store;dur=[\d.]+, count;dur=[\d.]+/);
  });

  it("says so when no location is known", async () => {
    const body = await suggestionsFor("sg-nowhere");
    expect(body.status).toBe("no_location");
    expect(body.location).toBeNull();
    expect(body.reason).toMatch(/lat and lon/);
    expect(body.rooms).toEqual([]);
  });
});

describe("GET /api/chat/rooms/suggestions: the rule", () => {
  it("20 other users are below the threshold, 21 pass; the caller is not counted", async () => {
    await seedUsers("sg-n", LYON, 20);
    // The caller is recorded at the center too and must not count.
    const at20 = await suggestionsFor("sg-caller", LYON);
    expect(at20).toMatchObject({ status: "below_threshold", nearbyUsers: 20, threshold: 20, radiusKm: 50, activeWindowMinutes: 15 });
    expect(at20.rooms).toEqual([]);
    expect(at20.proposed).toBeNull();
    expect(at20.reason).toMatch(/more than 20/);
    expect((await storedLocation(env, "sg-caller"))?.source).toBe("client");

    await seedUsers("sg-extra", LYON, 1);
    const at21 = await suggestionsFor("sg-caller", LYON, { latitude: "45.75", longitude: "4.85", city: "Lyon" });
    expect(at21.status).toBe("propose");
    expect(at21.nearbyUsers).toBe(21);
    expect(at21.proposed).toEqual({ name: "Lyon local", category: "local", description: "People chatting near Lyon.", lat: 45.8, lon: 4.8 });

    // Another user at the same place sees the first caller as one of 22.
    expect((await suggestionsFor("sg-other", LYON)).nearbyUsers).toBe(22);
  });

  it("ignores users not seen in the last 15 minutes", async () => {
    await seedUsers("sg-stale", LYON, 25, { ageMs: ACTIVE_WINDOW_MS + 1000 });
    await seedUsers("sg-edge", LYON, 3, { ageMs: ACTIVE_WINDOW_MS + 1 });
    await seedUsers("sg-fresh", LYON, 4, { ageMs: ACTIVE_WINDOW_MS - 60_000 });
    const body = await suggestionsFor("sg-caller", LYON);
    expect(body.nearbyUsers).toBe(4);
    expect(body.status).toBe("below_threshold");
  });

  it("counts exactly what brute-force haversine counts, at the antimeridian, high latitudes and a pole", async () => {
    const rand = rng(424242);
    const centers = [
      { lat: -16.5, lon: 179.95 }, // Fiji, across the antimeridian
      { lat: 65.8, lon: -179.9 },
      { lat: 78.22, lon: 15.65 }, // Svalbard
      { lat: 89.8, lon: 120 }, // the disc holds the north pole
      { lat: -89.95, lon: 0 },
      { lat: 48.75, lon: 2.25 }, // on a band edge
      { lat: 0.001, lon: -0.001 },
    ];
    for (const [k, c] of centers.entries()) {
      await env.DB.prepare("DELETE FROM user_locations").run();
      const fresh = await seedUsers(`sg-p${k}`, c, 90, { km: () => rand() * 90, rand });
      await seedUsers(`sg-ps${k}`, c, 15, { km: () => rand() * 40, rand, ageMs: ACTIVE_WINDOW_MS + 5000 });
      const body = await suggestionsFor(`sg-pc${k}`, c);
      const center = body.location!;
      expect(center).toMatchObject(roundLocation(c.lat, c.lon));
      const brute = fresh.filter((u) => haversineKm(center.lat, center.lon, u.lat, u.lon) <= SUGGEST_RADIUS_KM).length;
      expect(brute, `center ${JSON.stringify(c)}`).toBeGreaterThan(5);
      expect(body.nearbyUsers, `center ${JSON.stringify(c)}`).toBe(brute);
    }
  });

  it("lists located rooms within 50 km by distance ring, then activity", async () => {
    await seedUsers("sg-r", LYON, 21);
    await insertRoom("sg-near-quiet", destination(LYON.lat, LYON.lon, 3, 0), 0);
    await insertRoom("sg-near-busy", destination(LYON.lat, LYON.lon, 8, 1), 5);
    await insertRoom("sg-far-busy", destination(LYON.lat, LYON.lon, 35, 2), 50);
    await insertRoom("sg-too-far", destination(LYON.lat, LYON.lon, 55, 3), 100);
    await insertRoom("sg-unlocated", null, 100);
    const body = await suggestionsFor("sg-caller", LYON);
    expect(body.status).toBe("rooms");
    expect(body.proposed).toBeNull();
    expect(body.rooms.map((r) => r.id)).toEqual(["sg-near-busy", "sg-near-quiet", "sg-far-busy"]);
    const d = body.rooms.map((r) => r.distanceKm);
    expect(d[0]).toBeGreaterThan(6);
    expect(d[0]).toBeLessThan(10);
    expect(d[2]).toBeGreaterThan(33);
    expect(d[2]).toBeLessThan(37);
  });

  it("proposes a room the client can create with POST /api/chat/rooms as is", async () => {
    await seedUsers("sg-c", LYON, 21);
    const before = await suggestionsFor("sg-caller", LYON);
    expect(before.status).toBe("propose");
    // No cf city near here: the name comes from the coordinates.
    expect(before.proposed?.name).toBe("Local 45.8, 4.8");
    const created = await api("sg-caller", "/api/chat/rooms", { method: "POST", json: before.proposed });
    expect(created.status, await created.clone().text()).toBe(201);
    const room = await created.json<{ id: string }>();
    const after = await suggestionsFor("sg-caller", LYON);
    expect(after.status).toBe("rooms");
    expect(after.rooms.map((r) => r.id)).toEqual([room.id]);
  });
});

describe("GET /api/chat/rooms/suggestions: where the location comes from", () => {
  it("records the edge's location (cf) when the client sends none", async () => {
    const body = await suggestionsFor("sg-cf", undefined, { latitude: "45.76000", longitude: "4.84000", city: "Lyon" });
    expect(body.location).toMatchObject({ lat: 45.76, lon: 4.84, source: "cf" });
    expect(await storedLocation(env, "sg-cf")).toMatchObject({ lat: 45.76, lon: 4.84, source: "cf" });
  });

  it("prefers the client's fresh coordinates over the edge's guess, and never overwrites them with it", async () => {
    await suggestionsFor("sg-src", LYON);
    const later = await suggestionsFor("sg-src", undefined, { latitude: "30.27", longitude: "-97.74", city: "Austin" });
    expect(later.location).toMatchObject({ ...LYON, source: "stored" });
    expect(await storeLocation(env, "sg-src", { lat: 30.27, lon: -97.74, source: "cf" })).toBeNull();
    expect(await storedLocation(env, "sg-src")).toMatchObject({ ...LYON, source: "client" });
    // Once the client's location is stale, the edge's replaces it.
    await storeLocation(env, "sg-src", { ...LYON, source: "client" }, Date.now() - ACTIVE_WINDOW_MS - 1);
    const stale = await suggestionsFor("sg-src", undefined, { latitude: "30.27", longitude: "-97.74" });
    expect(stale.location).toMatchObject({ lat: 30.27, lon: -97.74, source: "cf" });
  });

  it("falls back to the last stored location, however old", async () => {
    await storeLocation(env, "sg-old", LYON, Date.now() - 86_400_000);
    const body = await suggestionsFor("sg-old");
    expect(body.location).toMatchObject({ ...LYON, source: "stored" });
  });
});

describe("suggestion notifications", () => {
  const isSuggestion = (m: ServerMessage) => m.type === "suggestion";

  it("reach the inbox sockets when the caller's area passes the threshold, once per area per day", async () => {
    await seedUsers("sg-ws", LYON, 21);
    const sock = await connectWs("sg-notified", "/api/chat/ws");
    try {
      // Under way: a REST call records the location and finds 21 others nearby.
      const body = await suggestionsFor("sg-notified", LYON, { latitude: "45.7", longitude: "4.9", city: "Lyon" });
      expect(body.status).toBe("propose");
      const frame = await sock.waitFor<Extract<ServerMessage, { type: "suggestion" }>>(isSuggestion);
      expect(frame).toEqual({
        type: "suggestion",
        nearbyUsers: 21,
        rooms: [],
        proposed: { name: "Lyon local", category: "local", lat: 45.8, lon: 4.8 },
      });

      // Same area, same day: recorded again, not notified again.
      await suggestionsFor("sg-notified", destination(LYON.lat, LYON.lon, 5, 1));
      sock.send({ type: "ping", id: "after" });
      await sock.waitFor((m) => m.type === "pong");
      expect(sock.frames.filter(isSuggestion)).toHaveLength(1);
      const s = await suggestionsAt(env, "sg-notified", LYON);
      expect(await notifySuggestion(env, "sg-notified", LYON, s)).toBe(false);

      // Another area (Geneva, about 110 km away) over the threshold: notified there too.
      const GENEVA = { lat: 46.2, lon: 6.14 };
      await seedUsers("sg-ws-ge", GENEVA, 22);
      await suggestionsFor("sg-notified", GENEVA);
      const second = await sock.waitFor<Extract<ServerMessage, { type: "suggestion" }>>(
        (m) => m.type === "suggestion" && m.nearbyUsers === 22,
      );
      expect(second.proposed?.name).toBe("Local 46.2, 6.1");
    } finally {
      sock.close();
    }
  });

  it("are not sent below the threshold, nor claimed by a recording no socket saw", async () => {
    await seedUsers("sg-q", LYON, 21);
    // No inbox socket: nothing is delivered, so the day's claim is released for a later connection.
    const s = await suggestionsAt(env, "sg-offline", LYON);
    expect(s.status).toBe("propose");
    expect(await notifySuggestion(env, "sg-offline", LYON, s)).toBe(false);
    const claims = await env.DB.prepare("SELECT count(*) AS n FROM suggestion_notices WHERE user_id = 'sg-offline'").first<{ n: number }>();
    expect(claims?.n).toBe(0);
    // A REST caller reads the suggestion in the answer: the claim is kept, socket or not.
    await suggestionsFor("sg-offline", LYON);
    const kept = await env.DB.prepare("SELECT count(*) AS n FROM suggestion_notices WHERE user_id = 'sg-offline'").first<{ n: number }>();
    expect(kept?.n).toBe(1);
    const below = await suggestionsAt(env, "sg-offline", { lat: 0, lon: 0 });
    expect(below.status).toBe("below_threshold");
    expect(await notifySuggestion(env, "sg-offline", { lat: 0, lon: 0 }, below)).toBe(false);
  });

  it("the inbox connection records the client's location", async () => {
    const sock = await connectWs("sg-inbox-loc", `/api/chat/ws?lat=${LYON.lat}&lon=${LYON.lon}`);
    try {
      // recordLocation runs beside the upgrade (waitUntil); wait for the row rather than a time.
      const deadline = Date.now() + 10_000;
      let stored = await storedLocation(env, "sg-inbox-loc");
      while (!stored && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        stored = await storedLocation(env, "sg-inbox-loc");
      }
      expect(stored).toMatchObject({ ...LYON, source: "client" });
    } finally {
      sock.close();
    }
  });
});
