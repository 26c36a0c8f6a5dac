/**
 * A user's coarse location and the nearby queries behind room suggestions (issue 7).
 * Callers use `recordLocation` (the inbox connection) and `locationFromRequest`; the suggestions
 * route uses the rest. The geometry is in `geo.ts`; this file is the D1 side.
 *
 * Storage: `user_locations` holds one row per user: the location rounded to about 1 km, its cell,
 * its unit vector and the time. The nearby count reads `cell IN (cover) AND updated_at > now − 15 min`
 * through the covering index `user_locations_near_idx` and tests great-circle distance as a dot
 * product in SQL, so only the rows of the ~18 cells around the caller are touched and only a count
 * leaves the database.
 */
import { and, desc, eq, gt, inArray, isNotNull, lt, ne, sql } from "drizzle-orm";
import { db } from "../db/queries";
import { logError } from "../log";
import { rooms, suggestionNotices, userLocations } from "../db/schema";
import {
  ACTIVE_WINDOW_MS,
  SUGGEST_RADIUS_KM,
  SUGGEST_THRESHOLD,
  areaOf,
  cellOf,
  coverCells,
  haversineKm,
  minDotWithin,
  roundLocation,
  suggest,
  unitVector,
  validCoords,
  type LatLon,
  type NearbyRoom,
  type Suggestion,
} from "./geo";
import { inboxStub } from "../objects/stubs";
import type { ServerFrameMessage } from "../protocol";

/** A location reported for a user. */
export interface Coords {
  lat: number;
  lon: number;
  /**
   * `client`: the client's own coordinates (`?lat=&lon=`), the default. `cf`: the edge's IP
   * geolocation; it never replaces a client location younger than 15 minutes.
   */
  source?: LocationSource;
  /** The edge's city (`cf.city`), to name a proposed local room. */
  city?: string;
}

/** Where a stored location came from. */
export type LocationSource = "client" | "cf";

/** A stored location. */
export interface StoredLocation extends LatLon {
  source: LocationSource;
  updatedAt: number;
}

const DAY_MS = 86_400_000;
/** Located rooms read per query at most (the busiest first if a region ever holds more). */
const ROOMS_READ_MAX = 1000;

/** `cf.latitude`/`cf.longitude`/`cf.city` of an incoming request, when the edge set valid ones. */
export function cfLocation(req: Request): (LatLon & { city?: string }) | null {
  const cf = req.cf as { latitude?: unknown; longitude?: unknown; city?: unknown } | undefined;
  if (!cf) return null;
  const lat = typeof cf.latitude === "string" && cf.latitude !== "" ? Number(cf.latitude) : cf.latitude;
  const lon = typeof cf.longitude === "string" && cf.longitude !== "" ? Number(cf.longitude) : cf.longitude;
  if (!validCoords(lat, lon)) return null;
  const city = typeof cf.city === "string" && cf.city.trim() !== "" ? cf.city : undefined;
  return { lat: lat as number, lon: lon as number, city };
}

/** Parses a coordinate from a query string: a plain decimal number, or NaN. */
export function parseCoord(raw: string | null | undefined): number {
  if (raw === null || raw === undefined || !/^\s*[+-]?(\d{1,3}(\.\d{0,15})?|\.\d{1,15})\s*$/.test(raw)) return Number.NaN;
  return Number(raw);
}

/**
 * The location an inbox connection (or any request) carries: the client's `?lat=&lon=` when both are
 * valid, else the edge's `cf` coordinates, else null. For the inbox socket, where a bad query should
 * not refuse the connection; REST routes validate strictly instead.
 */
export function locationFromRequest(req: Request): Coords | null {
  const url = new URL(req.url);
  const cf = cfLocation(req);
  const lat = parseCoord(url.searchParams.get("lat"));
  const lon = parseCoord(url.searchParams.get("lon"));
  if (validCoords(lat, lon)) return { lat, lon, source: "client", city: cityNear(cf, { lat, lon }) };
  return cf ? { lat: cf.lat, lon: cf.lon, source: "cf", city: cf.city } : null;
}

/** The edge's city, when the edge located the request within the suggestion radius of `at`. */
export function cityNear(cf: (LatLon & { city?: string }) | null, at: LatLon): string | undefined {
  if (!cf?.city) return undefined;
  return haversineKm(cf.lat, cf.lon, at.lat, at.lon) <= SUGGEST_RADIUS_KM ? cf.city : undefined;
}

/**
 * Stores the user's location rounded to about 1 km with the time, and returns what was stored:
 * null when the coordinates are invalid or when an IP-derived location (`cf`) would replace a
 * client location younger than the active window.
 */
export async function storeLocation(env: Env, userId: string, coords: Coords, now = Date.now()): Promise<StoredLocation | null> {
  if (!validCoords(coords.lat, coords.lon)) return null;
  const source = coords.source ?? "client";
  const p = roundLocation(coords.lat, coords.lon);
  const v = unitVector(p.lat, p.lon);
  const row = { lat: p.lat, lon: p.lon, cell: cellOf(p.lat, p.lon), x: v.x, y: v.y, z: v.z, source, updatedAt: now };
  const written = await db(env)
    .insert(userLocations)
    .values({ userId, ...row })
    .onConflictDoUpdate({
      target: userLocations.userId,
      set: row,
      // A client's own coordinates beat the edge's guess while they are fresh.
      setWhere:
        source === "cf"
          ? sql`${userLocations.source} = 'cf' OR ${userLocations.updatedAt} <= ${now - ACTIVE_WINDOW_MS}`
          : undefined,
    })
    .returning({ userId: userLocations.userId });
  return written.length > 0 ? { lat: p.lat, lon: p.lon, source, updatedAt: now } : null;
}

/** The user's stored location, or null. */
export async function storedLocation(env: Env, userId: string): Promise<StoredLocation | null> {
  const row = await db(env)
    .select({ lat: userLocations.lat, lon: userLocations.lon, source: userLocations.source, updatedAt: userLocations.updatedAt })
    .from(userLocations)
    .where(eq(userLocations.userId, userId))
    .get();
  return row ?? null;
}

/**
 * Other users active in the last 15 minutes within `radiusKm` of `center` (great-circle), the caller
 * excluded. Touches only the index entries of the cells covering the disc.
 */
export async function countNearbyUsers(
  env: Env,
  center: LatLon,
  excludeUserId: string,
  now = Date.now(),
  radiusKm = SUGGEST_RADIUS_KM,
): Promise<number> {
  const cells = coverCells(center.lat, center.lon, radiusKm);
  const v = unitVector(center.lat, center.lon);
  const row = await db(env)
    .select({ n: sql<number>`count(*)` })
    .from(userLocations)
    .where(
      and(
        inArray(userLocations.cell, cells),
        gt(userLocations.updatedAt, now - ACTIVE_WINDOW_MS),
        ne(userLocations.userId, excludeUserId),
        sql`${userLocations.x} * ${v.x} + ${userLocations.y} * ${v.y} + ${userLocations.z} * ${v.z} >= ${minDotWithin(radiusKm)}`,
      ),
    )
    .get();
  return row?.n ?? 0;
}

/** Located rooms within `radiusKm` of `center`, with their haversine distance, unordered. */
export async function nearbyRooms(env: Env, center: LatLon, radiusKm = SUGGEST_RADIUS_KM): Promise<NearbyRoom[]> {
  const rows = await db(env)
    .select({
      id: rooms.id,
      name: rooms.name,
      category: rooms.category,
      description: rooms.description,
      lat: rooms.lat,
      lon: rooms.lon,
      onlineCount: rooms.onlineCount,
      messageCount: rooms.messageCount,
      lastMessageAt: rooms.lastMessageAt,
    })
    .from(rooms)
    // Private rooms are never suggested: to a non-member they do not exist (docs/moderation.md).
    .where(and(inArray(rooms.cell, coverCells(center.lat, center.lon, radiusKm)), isNotNull(rooms.lat), isNotNull(rooms.lon), eq(rooms.visibility, "public")))
    .orderBy(desc(rooms.onlineCount))
    .limit(ROOMS_READ_MAX);
  const out: NearbyRoom[] = [];
  for (const r of rows) {
    if (r.lat === null || r.lon === null) continue;
    const distanceKm = haversineKm(center.lat, center.lon, r.lat, r.lon);
    if (distanceKm <= radiusKm) out.push({ ...r, lat: r.lat, lon: r.lon, distanceKm: Math.round(distanceKm * 100) / 100 });
  }
  return out;
}

/**
 * Milliseconds spent in each D1 step, filled in when passed (the route reports them as
 * `Server-Timing`). Workers clocks advance across I/O, so these are the queries' wall times.
 */
export interface Timings {
  store?: number;
  count?: number;
  rooms?: number;
  notify?: number;
}

async function timed<T>(timings: Timings | undefined, key: keyof Timings, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    if (timings) timings[key] = performance.now() - t0;
  }
}

/** The suggestion rule evaluated at `center` for `userId` (rooms are read only above the threshold). */
export async function suggestionsAt(
  env: Env,
  userId: string,
  center: LatLon,
  opts: { city?: string; now?: number; timings?: Timings } = {},
): Promise<Suggestion> {
  const nearbyUsers = await timed(opts.timings, "count", () => countNearbyUsers(env, center, userId, opts.now));
  // Under the threshold the list is empty whatever the rooms are: skip that read.
  const located = nearbyUsers > SUGGEST_THRESHOLD ? await timed(opts.timings, "rooms", () => nearbyRooms(env, center)) : [];
  return suggest({ nearbyUsers, rooms: located, center, city: opts.city });
}

/** The `suggestion` frame for a suggestion above the threshold. */
export function suggestionFrame(s: Suggestion): ServerFrameMessage {
  return {
    type: "suggestion",
    nearbyUsers: s.nearbyUsers,
    rooms: s.rooms.map((r) => ({ id: r.id, name: r.name, distanceKm: r.distanceKm })),
    proposed: s.proposed ? { name: s.proposed.name, category: s.proposed.category, lat: s.proposed.lat, lon: s.proposed.lon } : null,
  };
}

/**
 * Sends the user's inbox sockets a `suggestion` frame when `s` is above the threshold, at most once
 * per user, area (`areaOf`, about 111 km) and UTC day. The claim is written before the send, so
 * concurrent recordings cannot both send, and a send that throws is not retried that day. A send
 * that reached no socket releases the claim unless `releaseUnseen` is false (the REST route: its
 * caller has just read the suggestion, and keeping the claim spares every later call a Durable
 * Object round trip that day). Returns whether a socket got the frame.
 */
export async function notifySuggestion(
  env: Env,
  userId: string,
  center: LatLon,
  s: Suggestion,
  now = Date.now(),
  opts: { releaseUnseen?: boolean } = {},
): Promise<boolean> {
  if (s.status === "below_threshold") return false;
  const day = Math.floor(now / DAY_MS);
  const claim = { userId, area: areaOf(center.lat, center.lon), day, sentAt: now };
  const claimed = await db(env)
    .insert(suggestionNotices)
    .values(claim)
    .onConflictDoNothing()
    .returning({ day: suggestionNotices.day });
  if (claimed.length === 0) return false;
  // Earlier days' claims are spent: keep the table at one day's areas per user.
  await db(env)
    .delete(suggestionNotices)
    .where(and(eq(suggestionNotices.userId, userId), lt(suggestionNotices.day, day)));
  const reached = await inboxStub(env, userId).deliver(suggestionFrame(s));
  if (reached === 0 && opts.releaseUnseen !== false) {
    // No socket was open (the inbox connection records the location while its upgrade is still in
    // flight): release the claim so a later recording can notify.
    await db(env)
      .delete(suggestionNotices)
      .where(and(eq(suggestionNotices.userId, userId), eq(suggestionNotices.area, claim.area), eq(suggestionNotices.day, day)));
    return false;
  }
  return true;
}

/**
 * Records a location and returns what was stored and the suggestion there (after notifying the
 * user's sockets when it passes the threshold). Throws on storage errors: for the REST route.
 */
export async function recordAndSuggest(
  env: Env,
  userId: string,
  coords: Coords,
  now = Date.now(),
  opts: { releaseUnseen?: boolean; timings?: Timings } = {},
): Promise<{ stored: StoredLocation | null; suggestion: Suggestion | null }> {
  const stored = await timed(opts.timings, "store", () => storeLocation(env, userId, coords, now));
  if (!stored) return { stored: null, suggestion: null };
  const suggestion = await suggestionsAt(env, userId, stored, { city: coords.city, now, timings: opts.timings });
  try {
    await timed(opts.timings, "notify", () => notifySuggestion(env, userId, stored, suggestion, now, opts));
  } catch (err) {
    // The notification is a nicety: its failure must not fail the recording or the caller's request.
    logError("suggestions: notifySuggestion failed", err, { userId });
  }
  return { stored, suggestion };
}

/**
 * Stores the user's location rounded to about 1 km, with the time, and sends the user's inbox
 * sockets a `suggestion` frame when their area passes the threshold (once per area per day).
 * Invalid coordinates are ignored. Never throws (it runs beside socket setup): errors are logged.
 */
export async function recordLocation(env: Env, userId: string, coords: Coords, now = Date.now()): Promise<void> {
  try {
    await recordAndSuggest(env, userId, coords, now);
  } catch (err) {
    logError("suggestions: recordLocation failed", err, { userId });
  }
}
