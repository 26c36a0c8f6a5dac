/**
 * Pure geometry for room suggestions: great-circle distance, rounding to about 1 km, the spatial
 * cell scheme with the cells covering a disc, and the suggestion rule. No Cloudflare imports.
 *
 * Cell scheme ("equal-area bands"): latitude is cut into bands of `CELL_DEG` degrees; band `i` is
 * cut into `n_i = max(1, round(360·cos(mid_i)/CELL_DEG))` equal longitude slices, so every cell is
 * about `CELL_DEG` × `CELL_DEG` degrees *of the equator* (≈ 28 × 28 km) wherever it is, and near the
 * poles a band has only a few slices instead of hundreds of slivers. A 50 km disc touches about
 * 15–25 cells everywhere, poles and antimeridian included (see `coverCells`).
 */

/** Mean Earth radius (IUGG), km. */
export const EARTH_RADIUS_KM = 6371.0088;
/** Suggestion radius: users and rooms within this great-circle distance count as nearby. */
export const SUGGEST_RADIUS_KM = 50;
/** Suggestions need strictly more than this many other active users nearby. */
export const SUGGEST_THRESHOLD = 20;
/** A stored location counts as active for this long after it was recorded. */
export const ACTIVE_WINDOW_MS = 15 * 60_000;
/** Height of a latitude band, and the width of a cell at the equator, in degrees. */
export const CELL_DEG = 0.25;
/** Size of the "area" used to throttle suggestion notifications (once per area per day). */
export const AREA_DEG = 1;
/** Rounding step for stored locations, degrees of latitude (≈ 1.1 km). */
export const ROUND_DEG = 0.01;
/** Most rooms a suggestion lists. */
export const SUGGEST_ROOMS_MAX = 20;
/** Rooms are ranked in distance rings of this width, busiest first inside a ring. */
export const RING_KM = 10;

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;

/** A point on the globe, degrees. */
export interface LatLon {
  lat: number;
  lon: number;
}

/** True when `lat` ∈ [-90, 90] and `lon` ∈ [-180, 180], both finite numbers. */
export function validCoords(lat: unknown, lon: unknown): boolean {
  return (
    typeof lat === "number" &&
    typeof lon === "number" &&
    Number.isFinite(lat) &&
    Number.isFinite(lon) &&
    lat >= -90 &&
    lat <= 90 &&
    lon >= -180 &&
    lon <= 180
  );
}

/** Longitude folded into [-180, 180). */
export function normalizeLon(lon: number): number {
  const l = ((((lon + 180) % 360) + 360) % 360) - 180;
  return Object.is(l, -0) ? 0 : l;
}

/** Great-circle distance in km (haversine: well-conditioned for small distances too). */
export function haversineKm(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const dLat = (bLat - aLat) * RAD;
  const dLon = (bLon - aLon) * RAD;
  const s1 = Math.sin(dLat / 2);
  const s2 = Math.sin(dLon / 2);
  const h = s1 * s1 + Math.cos(aLat * RAD) * Math.cos(bLat * RAD) * s2 * s2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The unit vector of a point (x toward 0°E on the equator, z toward the north pole). */
export function unitVector(lat: number, lon: number): { x: number; y: number; z: number } {
  const p = lat * RAD;
  const l = lon * RAD;
  return { x: Math.cos(p) * Math.cos(l), y: Math.cos(p) * Math.sin(l), z: Math.sin(p) };
}

/**
 * Two points are within `radiusKm` (great-circle) exactly when the dot product of their unit
 * vectors is at least this. It lets SQL test great-circle distance with arithmetic only.
 */
export function minDotWithin(radiusKm: number): number {
  return Math.cos(radiusKm / EARTH_RADIUS_KM);
}

/**
 * Rounds a location to about 1 km in both directions: latitude to `ROUND_DEG`, longitude to the
 * multiple of `ROUND_DEG` closest to that length on the ground at this latitude (0.01° at the
 * equator, 0.02° at 50°, coarser toward the poles), so a polar location is not stored more precisely
 * than an equatorial one and stored values read as plain decimals. Longitude comes back in [-180, 180).
 */
export function roundLocation(lat: number, lon: number): LatLon {
  const rLat = Math.max(-90, Math.min(90, Math.round(lat / ROUND_DEG) * ROUND_DEG));
  const cos = Math.cos(rLat * RAD);
  const step = cos < 1e-9 ? 360 : ROUND_DEG * Math.max(1, Math.round(1 / cos));
  const rLon = normalizeLon(Math.round(normalizeLon(lon) / step) * step);
  // Trim float noise (0.30000000000000004) so stored values read as rounded.
  return { lat: Number(rLat.toFixed(6)), lon: Number(normalizeLon(Number(rLon.toFixed(6))).toFixed(6)) };
}

// ---------------------------------------------------------------- cells

function bandCount(size: number): number {
  return Math.round(180 / size);
}

function bandOf(lat: number, size: number): number {
  return Math.min(bandCount(size) - 1, Math.max(0, Math.floor((lat + 90) / size)));
}

function slicesIn(band: number, size: number): number {
  const mid = -90 + (band + 0.5) * size;
  return Math.max(1, Math.round((360 * Math.cos(mid * RAD)) / size));
}

function sliceOf(lon: number, slices: number): number {
  const f = (normalizeLon(lon) + 180) / 360;
  return Math.min(slices - 1, Math.max(0, Math.floor(f * slices)));
}

function cellAt(lat: number, lon: number, size: number): string {
  const band = bandOf(lat, size);
  return `${band}:${sliceOf(lon, slicesIn(band, size))}`;
}

/**
 * The spatial cell of a point, stored with rooms and user locations so nearby lookups touch only
 * the cells around the caller (`coverCells`). Format `<band>:<slice>`.
 */
export function cellOf(lat: number, lon: number): string {
  return cellAt(lat, lon, CELL_DEG);
}

/** The coarser area (about 111 × 111 km) a suggestion notification is throttled by. */
export function areaOf(lat: number, lon: number): string {
  return `a${cellAt(lat, lon, AREA_DEG)}`;
}

/**
 * Half-width in radians of the longitude interval the disc (center φ, angular radius δ) covers on
 * the parallel at latitude x: from cos δ = sin φ sin x + cos φ cos x cos w. π when the whole
 * parallel is inside (a pole in the disc), 0 outside the disc's latitude range.
 */
function halfWidth(phi: number, delta: number, x: number): number {
  const cx = Math.cos(x);
  const cp = Math.cos(phi);
  if (cp < 1e-12 || cx < 1e-12) return Math.PI;
  const c = (Math.cos(delta) - Math.sin(phi) * Math.sin(x)) / (cp * cx);
  if (c <= -1) return Math.PI;
  if (c >= 1) return 0;
  return Math.acos(c);
}

/**
 * Every cell that holds a point within `radiusKm` of (lat, lon): the neighbor set a nearby query
 * must read. For each latitude band the disc reaches, it takes the slices under the widest part of
 * the disc inside that band. Why that is enough: along a parallel the disc is one longitude
 * interval of half-width w(x), and dw/dx has the sign of sin φ − cos δ·sin x, so w grows up to the
 * latitude x* with sin x* = sin φ / cos δ (where the disc touches its bounding meridians) and shrinks
 * after it; clamping x* into the band gives the band's widest interval. Near a pole, x* is the pole
 * and the whole band is taken; intervals that cross ±180° wrap. The radius is padded by 1 m against
 * rounding. The property test checks this against brute force on random points.
 */
export function coverCells(lat: number, lon: number, radiusKm = SUGGEST_RADIUS_KM, size = CELL_DEG): string[] {
  const delta = (radiusKm + 0.001) / EARTH_RADIUS_KM;
  const phi = lat * RAD;
  const latMin = Math.max(-90, lat - delta * DEG);
  const latMax = Math.min(90, lat + delta * DEG);
  const ratio = Math.sin(phi) / Math.cos(delta);
  const xStar = ratio >= 1 ? Math.PI / 2 : ratio <= -1 ? -Math.PI / 2 : Math.asin(ratio);
  const out: string[] = [];
  const first = bandOf(latMin, size);
  const last = bandOf(latMax, size);
  for (let band = first; band <= last; band++) {
    const lo = Math.max(latMin, -90 + band * size) * RAD;
    const hi = Math.min(latMax, -90 + (band + 1) * size) * RAD;
    const x = Math.min(hi, Math.max(lo, xStar));
    const w = halfWidth(phi, delta, x) * DEG;
    const n = slicesIn(band, size);
    if (w >= 180) {
      for (let s = 0; s < n; s++) out.push(`${band}:${s}`);
      continue;
    }
    // Slice indices along the unwrapped interval [lon − w, lon + w], folded back modulo n.
    const start = Math.floor(((normalizeLon(lon) - w + 180) / 360) * n);
    const end = Math.floor(((normalizeLon(lon) + w + 180) / 360) * n);
    if (end - start + 1 >= n) {
      for (let s = 0; s < n; s++) out.push(`${band}:${s}`);
      continue;
    }
    for (let s = start; s <= end; s++) out.push(`${band}:${((s % n) + n) % n}`);
  }
  return out;
}

// ---------------------------------------------------------------- the suggestion rule

/** A located room as read from D1, with its distance from the caller. */
export interface NearbyRoom {
  id: string;
  name: string;
  category: string;
  description: string;
  lat: number;
  lon: number;
  distanceKm: number;
  onlineCount: number;
  messageCount: number;
  lastMessageAt: number | null;
}

/** A local room the client may create with `POST /api/chat/rooms` as is. */
export interface ProposedRoom {
  name: string;
  category: "local";
  description: string;
  lat: number;
  lon: number;
}

/** What the suggestion rule decided. */
export type SuggestionStatus = "rooms" | "propose" | "below_threshold";

/** The outcome of the suggestion rule for one caller. */
export interface Suggestion {
  status: SuggestionStatus;
  reason: string;
  nearbyUsers: number;
  threshold: number;
  radiusKm: number;
  rooms: NearbyRoom[];
  proposed: ProposedRoom | null;
}

/**
 * Orders rooms by distance and activity: 10 km distance rings, nearest ring first; inside a ring the
 * busiest first (most users online now, then the most recent message, then most messages), then
 * the nearer, then by id so the order is stable.
 */
export function rankRooms(rooms: readonly NearbyRoom[]): NearbyRoom[] {
  const ring = (r: NearbyRoom) => Math.floor(r.distanceKm / RING_KM);
  return [...rooms].sort(
    (a, b) =>
      ring(a) - ring(b) ||
      b.onlineCount - a.onlineCount ||
      (b.lastMessageAt ?? 0) - (a.lastMessageAt ?? 0) ||
      b.messageCount - a.messageCount ||
      a.distanceKm - b.distanceKm ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

const NAME_MAX = 64;

/**
 * The local room to propose at `center`: named after the city when one is known ("Lyon local"),
 * else after the coordinates. Its location is the center rounded to 0.1° (about 11 km) so that a
 * public room does not pin its creator's 1 km cell.
 */
export function proposeRoom(center: LatLon, city?: string | null): ProposedRoom {
  const lat = Number((Math.round(center.lat * 10) / 10).toFixed(1));
  const lon = Number(normalizeLon(Math.round(center.lon * 10) / 10).toFixed(1));
  // Strip control characters and collapse whitespace: the name comes from a request header.
  const clean = (city ?? "").replace(/[\p{Cc}\p{Cf}]/gu, " ").replace(/\s+/g, " ").trim();
  const where = clean.length > 0 ? clean.slice(0, NAME_MAX - " local".length).trim() : null;
  const name = where ? `${where} local` : `Local ${lat.toFixed(1)}, ${lon.toFixed(1)}`;
  const description = where
    ? `People chatting near ${where}.`
    : `People chatting within ${SUGGEST_RADIUS_KM} km of ${lat.toFixed(1)}, ${lon.toFixed(1)}.`;
  return { name, category: "local", description, lat, lon };
}

/**
 * The suggestion rule: with more than `threshold` other active users within the radius, list the
 * located rooms within the radius (ranked, at most `SUGGEST_ROOMS_MAX`), or propose a local room
 * where there is none; otherwise an empty list that says the threshold is not met.
 * `rooms` must already be filtered to the radius.
 */
export function suggest(input: {
  nearbyUsers: number;
  rooms: readonly NearbyRoom[];
  center: LatLon;
  city?: string | null;
  threshold?: number;
  radiusKm?: number;
}): Suggestion {
  const threshold = input.threshold ?? SUGGEST_THRESHOLD;
  const radiusKm = input.radiusKm ?? SUGGEST_RADIUS_KM;
  const base = { nearbyUsers: input.nearbyUsers, threshold, radiusKm };
  if (input.nearbyUsers <= threshold) {
    return {
      ...base,
      status: "below_threshold",
      reason: `${input.nearbyUsers} other users active within ${radiusKm} km in the last 15 minutes; suggestions need more than ${threshold}.`,
      rooms: [],
      proposed: null,
    };
  }
  if (input.rooms.length > 0) {
    const rooms = rankRooms(input.rooms).slice(0, SUGGEST_ROOMS_MAX);
    return {
      ...base,
      status: "rooms",
      reason: `${input.nearbyUsers} other users are active nearby; ${input.rooms.length} located rooms within ${radiusKm} km.`,
      rooms,
      proposed: null,
    };
  }
  return {
    ...base,
    status: "propose",
    reason: `${input.nearbyUsers} other users are active nearby and there is no located room within ${radiusKm} km: create the proposed one.`,
    rooms: [],
    proposed: proposeRoom(input.center, input.city),
  };
}
