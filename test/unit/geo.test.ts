/**
 * Pure geo: the cell cover against brute force (property test on seeded random points, with the
 * antimeridian, the poles and cell edges forced in), haversine, rounding and the suggestion rule.
 */
import { describe, expect, it } from "vitest";
import {
  ACTIVE_WINDOW_MS,
  CELL_DEG,
  SUGGEST_RADIUS_KM,
  areaOf,
  cellOf,
  coverCells,
  haversineKm,
  minDotWithin,
  proposeRoom,
  rankRooms,
  roundLocation,
  suggest,
  unitVector,
  validCoords,
  type NearbyRoom,
} from "../../src/suggestions/geo";
import { destination, rng } from "../helpers/geo-fixtures";

/** Centers that stress the cover: random, antimeridian, high latitudes, poles, exact cell edges. */
function centers(rand: () => number, n: number): { lat: number; lon: number }[] {
  const fixed = [
    { lat: 0, lon: 0 },
    { lat: 0, lon: 180 },
    { lat: 0, lon: -180 },
    { lat: 89.99, lon: 10 },
    { lat: 90, lon: 0 },
    { lat: -90, lon: 0 },
    { lat: 89.6, lon: -179.9 },
    { lat: -89.6, lon: 179.95 },
    { lat: 88.5, lon: 45 },
    { lat: 85, lon: 179.99 },
    { lat: -75, lon: -179.99 },
    { lat: 65.82, lon: -168.9 }, // Bering Strait
    { lat: -16.5, lon: 179.6 }, // Fiji
    { lat: 48.75, lon: 2.25 }, // exactly on a band edge and near a slice edge
    { lat: 51.5, lon: -0.125 },
  ];
  const out = [...fixed];
  for (let i = 0; i < n; i++) {
    const kind = rand();
    if (kind < 0.4) out.push({ lat: rand() * 180 - 90, lon: rand() * 360 - 180 });
    else if (kind < 0.6) out.push({ lat: rand() * 180 - 90, lon: rand() < 0.5 ? 180 - rand() * 1.5 : -180 + rand() * 1.5 });
    else if (kind < 0.85) out.push({ lat: (rand() < 0.5 ? 1 : -1) * (80 + rand() * 10), lon: rand() * 360 - 180 });
    else {
      // Exact band and slice edges.
      const lat = Math.round((rand() * 170 - 85) / CELL_DEG) * CELL_DEG;
      out.push({ lat, lon: Math.round((rand() * 360 - 180) / CELL_DEG) * CELL_DEG });
    }
  }
  return out;
}

describe("coverCells", () => {
  it("holds the cell of every point within 50 km (property test against brute force)", () => {
    const seed = 20261123;
    const rand = rng(seed);
    let checked = 0;
    let inside = 0;
    for (const c of centers(rand, 600)) {
      const cover = new Set(coverCells(c.lat, c.lon));
      // Points just inside and outside the radius, in every direction, plus uniform ones in the disc.
      for (let k = 0; k < 200; k++) {
        const km = k < 60 ? SUGGEST_RADIUS_KM - rand() * 0.01 : k < 80 ? SUGGEST_RADIUS_KM + rand() * 2 : Math.sqrt(rand()) * 55;
        const p = destination(c.lat, c.lon, km, rand() * 2 * Math.PI);
        for (const q of [p, roundLocation(p.lat, p.lon)]) {
          const d = haversineKm(c.lat, c.lon, q.lat, q.lon);
          checked++;
          if (d <= SUGGEST_RADIUS_KM) {
            inside++;
            if (!cover.has(cellOf(q.lat, q.lon))) {
              throw new Error(`seed ${seed}: ${JSON.stringify(q)} is ${d} km from ${JSON.stringify(c)} but cell ${cellOf(q.lat, q.lon)} is not covered`);
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(200_000);
    expect(inside).toBeGreaterThan(100_000);
  });

  it("counts exactly what a brute-force haversine scan counts, on random point sets", () => {
    const rand = rng(7);
    const minDot = minDotWithin(SUGGEST_RADIUS_KM);
    for (const c of centers(rand, 80)) {
      // Users scattered up to 120 km away (stored rounded, as recordLocation does).
      const users = Array.from({ length: 300 }, () => {
        const p = destination(c.lat, c.lon, rand() * 120, rand() * 2 * Math.PI);
        const r = roundLocation(p.lat, p.lon);
        return { ...r, cell: cellOf(r.lat, r.lon), v: unitVector(r.lat, r.lon) };
      });
      const center = roundLocation(c.lat, c.lon);
      const cv = unitVector(center.lat, center.lon);
      const cover = new Set(coverCells(center.lat, center.lon));
      const brute = users.filter((u) => haversineKm(center.lat, center.lon, u.lat, u.lon) <= SUGGEST_RADIUS_KM).length;
      // What the D1 query does: cells from the cover, then the dot-product test.
      const indexed = users.filter((u) => cover.has(u.cell) && u.v.x * cv.x + u.v.y * cv.y + u.v.z * cv.z >= minDot).length;
      expect(indexed, JSON.stringify(c)).toBe(brute);
    }
  });

  it("stays small enough for one D1 statement (under 90 cells) everywhere", () => {
    const rand = rng(11);
    let max = 0;
    let total = 0;
    const all = centers(rand, 2000);
    for (const c of all) {
      const n = coverCells(c.lat, c.lon).length;
      max = Math.max(max, n);
      total += n;
    }
    expect(max).toBeLessThan(90);
    expect(total / all.length).toBeLessThan(30);
  });

  it("has no duplicate cells and wraps the antimeridian", () => {
    const cells = coverCells(10, 179.9);
    expect(new Set(cells).size).toBe(cells.length);
    expect(cells).toContain(cellOf(10, -179.9));
    expect(cells).toContain(cellOf(10, 179.9));
    // The same place written as +180 or -180 has the same cover.
    expect(coverCells(-20, 180).sort()).toEqual(coverCells(-20, -180).sort());
  });

  it("takes whole bands around a pole", () => {
    const cells = coverCells(89.9, 0);
    // The top band has a few slices, all of them in the disc.
    const top = cells.filter((c) => c.startsWith(`${Math.round(180 / CELL_DEG) - 1}:`));
    expect(top.length).toBeGreaterThan(0);
    expect(cells).toContain(cellOf(89.9, 180 - 1e-9));
    expect(cells).toContain(cellOf(89.7, 90));
  });
});

describe("haversineKm and the dot-product test", () => {
  it("matches known distances", () => {
    // Paris–London ≈ 343.5 km; a degree of latitude ≈ 111.2 km; across the antimeridian.
    expect(haversineKm(48.8566, 2.3522, 51.5074, -0.1278)).toBeCloseTo(343.5, 0);
    expect(haversineKm(0, 0, 1, 0)).toBeCloseTo(111.195, 2);
    expect(haversineKm(0, 179.9, 0, -179.9)).toBeCloseTo(22.239, 2);
    expect(haversineKm(90, 0, 90, 123)).toBeCloseTo(0, 6);
  });

  it("agrees with haversine on which points are within 50 km", () => {
    const rand = rng(3);
    const minDot = minDotWithin(SUGGEST_RADIUS_KM);
    for (let i = 0; i < 20_000; i++) {
      const a = { lat: rand() * 180 - 90, lon: rand() * 360 - 180 };
      const b = destination(a.lat, a.lon, rand() * 100, rand() * 2 * Math.PI);
      const d = haversineKm(a.lat, a.lon, b.lat, b.lon);
      if (Math.abs(d - SUGGEST_RADIUS_KM) < 1e-6) continue;
      const va = unitVector(a.lat, a.lon);
      const vb = unitVector(b.lat, b.lon);
      expect(va.x * vb.x + va.y * vb.y + va.z * vb.z >= minDot).toBe(d <= SUGGEST_RADIUS_KM);
    }
  });
});

describe("roundLocation", () => {
  it("moves a point by at most about 1 km, everywhere", () => {
    const rand = rng(5);
    for (let i = 0; i < 20_000; i++) {
      const lat = rand() * 180 - 90;
      const lon = rand() * 360 - 180;
      const r = roundLocation(lat, lon);
      expect(validCoords(r.lat, r.lon)).toBe(true);
      expect(r.lon).toBeLessThan(180);
      expect(haversineKm(lat, lon, r.lat, r.lon)).toBeLessThan(1.2);
    }
  });

  it("is idempotent and not finer than about 1 km near the poles", () => {
    const r = roundLocation(48.85661, 2.35222);
    expect(r).toEqual({ lat: 48.86, lon: 2.36 });
    expect(roundLocation(r.lat, r.lon)).toEqual(r);
    expect(roundLocation(90, 123)).toEqual({ lat: 90, lon: 0 });
    const edge = roundLocation(10, 179.999);
    expect(edge.lon).toBeLessThan(180);
    expect(haversineKm(10, 179.999, edge.lat, edge.lon)).toBeLessThan(1.2);
    // At 89.5° a 0.01° longitude step would be 10 m: the step is widened to keep about 1 km.
    const a = roundLocation(89.5, 10.001);
    const b = roundLocation(89.5, 10.02);
    expect(a).toEqual(b);
  });
});

describe("cells", () => {
  it("are stable strings and the area is coarser", () => {
    expect(cellOf(48.86, 2.35)).toBe(cellOf(48.8601, 2.3502));
    expect(cellOf(0, -180)).toBe(cellOf(0, 180));
    expect(areaOf(48.86, 2.35)).toBe(areaOf(48.7, 2.9));
    expect(areaOf(48.86, 2.35)).not.toBe(cellOf(48.86, 2.35));
  });

  it("validates coordinates", () => {
    expect(validCoords(0, 0)).toBe(true);
    expect(validCoords(90, 180)).toBe(true);
    expect(validCoords(-90.0001, 0)).toBe(false);
    expect(validCoords(0, 180.5)).toBe(false);
    expect(validCoords(Number.NaN, 0)).toBe(false);
    expect(validCoords(0, Number.POSITIVE_INFINITY)).toBe(false);
    expect(validCoords("1", 0)).toBe(false);
  });
});

describe("suggest", () => {
  const room = (id: string, distanceKm: number, onlineCount = 0, lastMessageAt: number | null = null): NearbyRoom => ({
    id,
    name: id,
    category: "local",
    description: "",
    lat: 0,
    lon: 0,
    distanceKm,
    onlineCount,
    messageCount: 0,
    lastMessageAt,
  });

  it("needs more than 20 other users: 20 is below, 21 passes", () => {
    const at20 = suggest({ nearbyUsers: 20, rooms: [room("a", 1)], center: { lat: 0, lon: 0 } });
    expect(at20.status).toBe("below_threshold");
    expect(at20.rooms).toEqual([]);
    expect(at20.proposed).toBeNull();
    expect(at20.reason).toMatch(/more than 20/);
    const at21 = suggest({ nearbyUsers: 21, rooms: [room("a", 1)], center: { lat: 0, lon: 0 } });
    expect(at21.status).toBe("rooms");
    expect(at21.rooms.map((r) => r.id)).toEqual(["a"]);
  });

  it("proposes a local room named after the city when there is none", () => {
    const s = suggest({ nearbyUsers: 30, rooms: [], center: { lat: 45.76, lon: 4.84 }, city: "Lyon" });
    expect(s.status).toBe("propose");
    expect(s.proposed).toEqual({ name: "Lyon local", category: "local", description: "People chatting near Lyon.", lat: 45.8, lon: 4.8 });
    expect(proposeRoom({ lat: -33.87, lon: 151.21 }).name).toBe("Local -33.9, 151.2");
    expect(proposeRoom({ lat: 0, lon: 179.97 }).lon).toBe(-180);
    expect(proposeRoom({ lat: 0, lon: 0 }, "Bad\u0000\nCity  name").name).toBe("Bad City name local");
    expect(proposeRoom({ lat: 0, lon: 0 }, "x".repeat(500)).name.length).toBeLessThanOrEqual(64);
  });

  it("ranks by distance ring, then activity", () => {
    const ranked = rankRooms([
      room("far-busy", 35, 50),
      room("near-quiet", 2, 0),
      room("near-busy", 8, 5),
      room("near-recent", 9, 0, 1000),
      room("mid", 15, 1),
    ]);
    expect(ranked.map((r) => r.id)).toEqual(["near-busy", "near-recent", "near-quiet", "mid", "far-busy"]);
  });

  it("keeps its constants as the design says", () => {
    expect(SUGGEST_RADIUS_KM).toBe(50);
    expect(ACTIVE_WINDOW_MS).toBe(15 * 60_000);
  });
});
