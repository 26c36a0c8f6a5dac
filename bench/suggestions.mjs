#!/usr/bin/env node
// Benchmark of GET /api/chat/rooms/suggestions with 100k located users in local D1.
//
//   node_modules/.bin/node bench/suggestions.mjs            (USERS, REQUESTS, PORT to change)
//
// A throwaway local database is migrated and loaded with generated SQL (`wrangler d1 execute
// --file`): 60% of the users in 20 metro clusters (Gaussian, σ = 20 km; among them Suva on the
// antimeridian, Tromsø, Longyearbyen and McMurdo at high latitudes), 40% uniform over the sphere;
// 80% active (seen in the last 2 minutes), 20% stale; plus located rooms. Then `wrangler dev` on
// 127.0.0.1:8841 answers sequential requests from 200 callers in three scenarios: dense (a cluster
// center), sparse (a uniform random point), edge (antimeridian and polar points). Each request
// records the caller's location and runs the nearby count (and the rooms read above the threshold),
// as in production. Before timing, a few answers are checked against a brute-force haversine count
// over the generated data. Prints p50/p99 per scenario and writes bench/results/suggestions.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { SignJWT } from "jose";
import { DEV_JWT_SECRET } from "../src/dev-secret.ts";
import {
  ACTIVE_WINDOW_MS,
  SUGGEST_RADIUS_KM,
  cellOf,
  coverCells,
  haversineKm,
  minDotWithin,
  normalizeLon,
  roundLocation,
  unitVector,
} from "../src/suggestions/geo.ts";
import { ROOT, prepareLocalDb, startDev, wranglerSync } from "../scripts/lib/wrangler.mjs";
import { destination, rng } from "../test/helpers/geo-fixtures.ts";

// wrangler's shebang runs `node` from PATH: make it this Node (22, from node_modules), not the system's.
process.env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`;

const USERS = Number(process.env.USERS ?? 100_000);
const REQUESTS = Number(process.env.REQUESTS ?? 1500);
const PORT = Number(process.env.PORT ?? 8841);
const CALLERS = 200;
const ROWS_PER_INSERT = 500;

const CITIES = [
  ["London", 51.507, -0.128],
  ["Paris", 48.857, 2.352],
  ["New York", 40.713, -74.006],
  ["Tokyo", 35.68, 139.77],
  ["São Paulo", -23.55, -46.63],
  ["Lagos", 6.52, 3.38],
  ["Mumbai", 19.08, 72.88],
  ["Sydney", -33.87, 151.21],
  ["Suva", -18.14, 178.44],
  ["Taveuni", -16.8, -179.97],
  ["Anchorage", 61.22, -149.9],
  ["Reykjavik", 64.15, -21.94],
  ["Tromsø", 69.65, 18.96],
  ["Longyearbyen", 78.22, 15.65],
  ["McMurdo", -77.85, 166.67],
  ["Moscow", 55.76, 37.62],
  ["Cairo", 30.04, 31.24],
  ["Mexico City", 19.43, -99.13],
  ["Auckland", -36.85, 174.76],
  ["Honolulu", 21.31, -157.86],
].map(([name, lat, lon]) => ({ name, lat, lon }));

// Seeded, so every run loads the same data; the same PRNG and formula the geo tests use.
const rand = rng(7);

function uniformPoint() {
  return { lat: (Math.asin(2 * rand() - 1) * 180) / Math.PI, lon: rand() * 360 - 180 };
}

function nearCity(sigmaKm) {
  const c = CITIES[Math.floor(rand() * CITIES.length)];
  // Rayleigh-distributed distance: a 2-D Gaussian around the center.
  const km = sigmaKm * Math.sqrt(-2 * Math.log(1 - rand()));
  return destination(c.lat, c.lon, km, rand() * 2 * Math.PI);
}

const sqlStr = (s) => `'${String(s).replaceAll("'", "''")}'`;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function token(sub) {
  return new SignJWT({ name: sub })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(DEV_JWT_SECRET));
}

async function main() {
  const persistTo = mkdtempSync(path.join(tmpdir(), "edge-chat-bench-suggest-"));
  const log = (m) => process.stdout.write(`${m}\n`);
  let dev;
  try {
    log(`suggestions bench: ${USERS} users, ${REQUESTS} timed requests per scenario, port ${PORT}`);
    prepareLocalDb({ persistTo, quiet: true });

    // ------------------------------------------------------------ data
    const now = Date.now();
    const users = [];
    for (let i = 0; i < USERS; i++) {
      const p = rand() < 0.6 ? nearCity(20) : uniformPoint();
      const r = roundLocation(p.lat, p.lon);
      const active = rand() < 0.8;
      const updatedAt = active ? now - Math.floor(rand() * 120_000) : now - ACTIVE_WINDOW_MS - Math.floor(rand() * 86_400_000);
      users.push({ id: `bu${i}`, ...r, updatedAt });
    }
    const roomsData = [];
    for (let i = 0; i < 2000; i++) {
      const p = i < 1000 ? nearCity(15) : uniformPoint();
      roomsData.push({ id: `bench-room-${i}`, lat: p.lat, lon: p.lon, online: Math.floor(rand() * 30) });
    }
    const lines = [];
    for (let i = 0; i < users.length; i += ROWS_PER_INSERT) {
      const values = users.slice(i, i + ROWS_PER_INSERT).map((u) => {
        const v = unitVector(u.lat, u.lon);
        return `(${sqlStr(u.id)},${u.lat},${u.lon},${sqlStr(cellOf(u.lat, u.lon))},${u.updatedAt},${v.x},${v.y},${v.z},'client')`;
      });
      lines.push(`INSERT INTO user_locations (user_id,lat,lon,cell,updated_at,x,y,z,source) VALUES ${values.join(",")};`);
    }
    for (let i = 0; i < roomsData.length; i += ROWS_PER_INSERT) {
      const values = roomsData.slice(i, i + ROWS_PER_INSERT).map(
        (r) =>
          `(${sqlStr(r.id)},${sqlStr(r.id)},'local','',${r.lat},${r.lon},${sqlStr(cellOf(r.lat, r.lon))},'bench',${now},${r.online})`,
      );
      lines.push(
        `INSERT INTO rooms (id,name,category,description,lat,lon,cell,created_by,created_at,online_count) VALUES ${values.join(",")};`,
      );
    }
    const sqlFile = path.join(persistTo, "load.sql");
    writeFileSync(sqlFile, `${lines.join("\n")}\nANALYZE;\n`);
    const t0 = performance.now();
    wranglerSync(["d1", "execute", "DB", "--local", "--persist-to", persistTo, "--file", sqlFile], { quiet: true });
    const loadMs = performance.now() - t0;
    const activeUsers = users.filter((u) => u.updatedAt > now - ACTIVE_WINDOW_MS).length;
    log(`loaded ${USERS} users (${activeUsers} active) and ${roomsData.length} rooms in ${(loadMs / 1000).toFixed(1)} s`);

    // ------------------------------------------------------------ plan and rows touched (D1 itself)
    const dense = CITIES[1];
    const c = roundLocation(dense.lat, dense.lon);
    const cells = coverCells(c.lat, c.lon);
    const v = unitVector(c.lat, c.lon);
    const where = `cell IN (${cells.map(sqlStr).join(",")}) AND updated_at > ${Date.now() - ACTIVE_WINDOW_MS} AND user_id <> 'nobody' AND x * ${v.x} + y * ${v.y} + z * ${v.z} >= ${minDotWithin(SUGGEST_RADIUS_KM)}`;
    const planOut = JSON.parse(
      wranglerSync(
        ["d1", "execute", "DB", "--local", "--persist-to", persistTo, "--json", "--command", `EXPLAIN QUERY PLAN SELECT count(*) FROM user_locations WHERE ${where}`],
        { quiet: true },
      ),
    );
    const plan = planOut[0].results.map((r) => r.detail).join("; ");
    // Local D1 reports no rows_read: count the index entries the range seeks visit instead.
    const scanned = `cell IN (${cells.map(sqlStr).join(",")}) AND updated_at > ${Date.now() - ACTIVE_WINDOW_MS}`;
    const countOut = JSON.parse(
      wranglerSync(
        [
          "d1", "execute", "DB", "--local", "--persist-to", persistTo, "--json", "--command",
          `SELECT (SELECT count(*) FROM user_locations WHERE ${where}) AS nearby, (SELECT count(*) FROM user_locations WHERE ${scanned}) AS scanned`,
        ],
        { quiet: true },
      ),
    );
    const { nearby: denseNearby, scanned: indexEntriesScanned } = countOut[0].results[0];
    log(`plan: ${plan}`);
    log(
      `at ${dense.name}: ${denseNearby} active users within ${SUGGEST_RADIUS_KM} km; the query visits ${indexEntriesScanned} index entries in ${cells.length} cells, of ${USERS} rows`,
    );

    // ------------------------------------------------------------ server
    dev = await startDev({ port: PORT, persistTo });
    const tokens = await Promise.all(Array.from({ length: CALLERS }, (_, i) => token(`bench-caller-${i}`)));
    const recorded = new Map();
    const ask = async (i, at) => {
      const started = performance.now();
      const res = await fetch(`${dev.url}/api/chat/rooms/suggestions?lat=${at.lat.toFixed(5)}&lon=${at.lon.toFixed(5)}`, {
        headers: { Authorization: `Bearer ${tokens[i % CALLERS]}` },
      });
      const body = await res.json();
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      recorded.set(`bench-caller-${i % CALLERS}`, { ...body.location, updatedAt: Date.now() });
      // Server-Timing: the D1 steps as the Worker measured them (count = the nearby query).
      const timing = {};
      for (const part of (res.headers.get("server-timing") ?? "").split(",")) {
        const m = /^\s*(\w+);dur=([\d.]+)/.exec(part);
        if (m) timing[m[1]] = Number(m[2]);
      }
      return { ms, body, timing };
    };

    // Correctness before speed: answers against brute force over the generated users and the callers.
    const checkAt = [...CITIES.slice(0, 5), ...CITIES.slice(8, 15), uniformPoint(), uniformPoint()];
    let checked = 0;
    for (const [k, p] of checkAt.entries()) {
      const caller = `bench-caller-${k}`;
      const { body } = await ask(k, p);
      const t = Date.now() - ACTIVE_WINDOW_MS;
      const loc = body.location;
      const inside = (u) => u.updatedAt > t && haversineKm(loc.lat, loc.lon, u.lat, u.lon) <= SUGGEST_RADIUS_KM;
      const brute =
        users.filter(inside).length + [...recorded].filter(([id, u]) => id !== caller && inside(u)).length;
      if (brute !== body.nearbyUsers) throw new Error(`at ${JSON.stringify(p)}: API says ${body.nearbyUsers}, brute force ${brute}`);
      checked++;
    }
    log(`checked ${checked} answers against brute-force haversine: all equal`);

    // ------------------------------------------------------------ timed
    const edgePoints = [
      () => ({ lat: -18.14 + (rand() - 0.5), lon: normalizeLon(178.44 + rand() * 4) }),
      () => ({ lat: 60 + rand() * 30, lon: rand() < 0.5 ? 179.9 : -179.9 }),
      () => ({ lat: 80 + rand() * 10, lon: rand() * 360 - 180 }),
      () => ({ lat: -80 - rand() * 10, lon: rand() * 360 - 180 }),
      () => ({ lat: 78.22 + (rand() - 0.5) * 0.2, lon: 15.65 + (rand() - 0.5) }),
    ];
    const scenarios = {
      dense: () => nearCity(5),
      sparse: () => uniformPoint(),
      edge: () => edgePoints[Math.floor(rand() * edgePoints.length)](),
    };
    const results = {};
    let n = 0;
    for (const [name, point] of Object.entries(scenarios)) {
      for (let w = 0; w < 30; w++) await ask(n++, point());
      const ms = [];
      const count = [];
      const roomsMs = [];
      let nearby = 0;
      const statuses = {};
      for (let i = 0; i < REQUESTS; i++) {
        const r = await ask(n++, point());
        ms.push(r.ms);
        if (r.timing.count !== undefined) count.push(r.timing.count);
        if (r.timing.rooms !== undefined) roomsMs.push(r.timing.rooms);
        nearby += r.body.nearbyUsers;
        statuses[r.body.status] = (statuses[r.body.status] ?? 0) + 1;
      }
      const stats = (a) => {
        a.sort((x, y) => x - y);
        if (a.length === 0) return null;
        const f = (v) => Number(v.toFixed(2));
        return { samples: a.length, p50Ms: f(percentile(a, 50)), p90Ms: f(percentile(a, 90)), p99Ms: f(percentile(a, 99)), maxMs: f(a[a.length - 1]) };
      };
      results[name] = {
        requests: REQUESTS,
        nearbyQuery: stats(count),
        roomsQuery: stats(roomsMs),
        endToEnd: stats(ms),
        meanNearbyUsers: Math.round(nearby / REQUESTS),
        statuses,
      };
    }

    const cell = (st, k) => (st ? st[k].toFixed(1) : "-");
    const rows = Object.entries(results).map(([k, r]) => [
      k,
      String(r.requests),
      String(r.meanNearbyUsers),
      cell(r.nearbyQuery, "p50Ms"),
      cell(r.nearbyQuery, "p99Ms"),
      cell(r.roomsQuery, "p50Ms"),
      cell(r.roomsQuery, "p99Ms"),
      cell(r.endToEnd, "p50Ms"),
      cell(r.endToEnd, "p99Ms"),
    ]);
    const head = ["scenario", "requests", "mean nearby", "query p50 ms", "query p99 ms", "rooms p50", "rooms p99", "e2e p50 ms", "e2e p99 ms"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (cols) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    log("");
    log(`GET /api/chat/rooms/suggestions?lat=&lon=, ${USERS} located users, sequential, loopback wrangler dev`);
    log("query = the nearby-users count as the Worker timed it (Server-Timing); e2e = the whole request from the client");
    log(fmt(head));
    for (const r of rows) log(fmt(r));

    const out = {
      benchmark: "suggestions",
      date: new Date().toISOString(),
      users: USERS,
      activeUsers,
      rooms: roomsData.length,
      cellsPerQuery: cells.length,
      denseQuery: { at: dense.name, nearbyUsers: denseNearby, indexEntriesScanned },
      queryPlan: plan,
      checkedAgainstBruteForce: checked,
      machine: { cpus: cpus().length, node: process.version, loadAverageAtEnd: loadavg().map((x) => Number(x.toFixed(2))) },
      note: "nearbyQuery: the D1 count of active users within 50 km, timed by the Worker (Server-Timing `count`); roomsQuery: the located-rooms read, run above the threshold only; endToEnd: the whole request over loopback to wrangler dev (local D1 is SQLite): JWT check, upsert of the caller's location, the count, the rooms read, the notification claim. Machine shared with other work: see loadAverageAtEnd.",
      scenarios: results,
    };
    mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
    writeFileSync(path.join(ROOT, "bench", "results", "suggestions.json"), `${JSON.stringify(out, null, 2)}\n`);
    log(`\nwrote bench/results/suggestions.json`);
  } finally {
    await dev?.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
