/**
 * GET /api/chat/rooms/suggestions: dynamic room suggestions from live user density (seed task T041).
 * Mounted before the rooms router, so its path is `/`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { ACTIVE_WINDOW_MS, SUGGEST_RADIUS_KM, SUGGEST_THRESHOLD, type Suggestion } from "../suggestions/geo";
import {
  cfLocation,
  cityNear,
  parseCoord,
  recordAndSuggest,
  storedLocation,
  suggestionsAt,
  type StoredLocation,
  type Timings,
} from "../suggestions/location";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";

const NearbyRoomSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    category: z.string(),
    description: z.string(),
    lat: z.number(),
    lon: z.number(),
    distanceKm: z.number().openapi({ description: "Great-circle distance from the caller's location, km" }),
    onlineCount: z.number().int(),
    messageCount: z.number().int(),
    lastMessageAt: z.number().nullable(),
  })
  .openapi("NearbyRoom");

const ProposedRoomSchema = z
  .object({
    name: z.string().openapi({ example: "Lyon local" }),
    category: z.literal("local"),
    description: z.string(),
    lat: z.number(),
    lon: z.number(),
  })
  .openapi("ProposedRoom", { description: "A local room to create by POSTing this object to /api/chat/rooms" });

const SuggestionsSchema = z
  .object({
    status: z.enum(["rooms", "propose", "below_threshold", "no_location"]).openapi({
      description:
        "`rooms`: located rooms within the radius; `propose`: none exists, create `proposed`; `below_threshold`: not enough other active users nearby; `no_location`: no location is known for the caller",
    }),
    reason: z.string().openapi({ description: "Why, in words" }),
    nearbyUsers: z.number().int().openapi({ description: "Other users active in the last 15 minutes within the radius" }),
    threshold: z.number().int().openapi({ description: "Suggestions need strictly more than this many nearby users" }),
    radiusKm: z.number(),
    activeWindowMinutes: z.number().int(),
    location: z
      .object({
        lat: z.number(),
        lon: z.number(),
        source: z.enum(["query", "stored", "cf"]).openapi({
          description: "`query`: this request's lat/lon; `stored`: the caller's last recorded location; `cf`: the edge's IP geolocation",
        }),
        updatedAt: z.number(),
      })
      .nullable()
      .openapi({ description: "The caller's location the answer is for, rounded to about 1 km" }),
    rooms: z.array(NearbyRoomSchema).openapi({ description: "Ranked by 10 km distance ring, then activity (busiest first)" }),
    proposed: ProposedRoomSchema.nullable(),
  })
  .openapi("RoomSuggestions");

const Coord = (name: "lat" | "lon", example: string) =>
  z
    .string()
    .max(40)
    .optional()
    .openapi({
      param: { name, in: "query" },
      example,
      description: `Caller's ${name === "lat" ? "latitude (-90..90)" : "longitude (-180..180)"}; recorded as their location. Give both or neither.`,
    });

// The caller reads the suggestion in the answer: the day's notification claim is kept even when no
// inbox socket was open to get the frame.
const REST = { releaseUnseen: false };

/** `Server-Timing` for the D1 steps that ran, so a client or the benchmark can see where time went. */
function serverTiming(t: Timings): string {
  return Object.entries(t)
    .map(([k, v]) => `${k};dur=${(v as number).toFixed(2)}`)
    .join(", ");
}

type Body = z.infer<typeof SuggestionsSchema>;

function body(s: Suggestion, loc: StoredLocation, source: "query" | "stored" | "cf"): Body {
  return {
    status: s.status,
    reason: s.reason,
    nearbyUsers: s.nearbyUsers,
    threshold: s.threshold,
    radiusKm: s.radiusKm,
    activeWindowMinutes: ACTIVE_WINDOW_MS / 60_000,
    location: { lat: loc.lat, lon: loc.lon, source, updatedAt: loc.updatedAt },
    rooms: s.rooms,
    proposed: s.proposed,
  };
}

function checkCoord(name: "lat" | "lon", raw: string, max: number): number {
  const n = parseCoord(raw);
  if (!Number.isFinite(n) || Math.abs(n) > max) {
    throw new ApiError({ code: "bad_request", message: `${name} must be a decimal number between -${max} and ${max}.` });
  }
  return n;
}

export const suggestions = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["rooms"],
    summary: "Room suggestions from live user density nearby",
    description:
      "When more than 20 other users were active within 50 km (great-circle) in the last 15 minutes: the located rooms within 50 km, or a proposed local room when there is none. Otherwise an empty list and the reason. The caller's location is this request's `lat`/`lon` (recorded, rounded to about 1 km), else their location recorded by a client in the last 15 minutes, else the edge's IP geolocation (recorded), else their last recorded location.",
    security: bearerSecurity,
    request: { query: z.object({ lat: Coord("lat", "48.8566"), lon: Coord("lon", "2.3522") }) },
    responses: {
      200: { description: "Suggestions, or why there are none", content: { "application/json": { schema: SuggestionsSchema } } },
      ...errorResponses(400, 401),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const q = c.req.valid("query");
    const now = Date.now();
    const timings: Timings = {};
    const send = (b: Body) => {
      const st = serverTiming(timings);
      if (st) c.header("Server-Timing", st);
      return c.json(b, 200);
    };
    if ((q.lat === undefined) !== (q.lon === undefined)) {
      throw new ApiError({ code: "bad_request", message: "lat and lon must be given together." });
    }
    const cf = cfLocation(c.req.raw);

    if (q.lat !== undefined && q.lon !== undefined) {
      const at = { lat: checkCoord("lat", q.lat, 90), lon: checkCoord("lon", q.lon, 180) };
      const { stored, suggestion } = await recordAndSuggest(c.env, user.id, { ...at, source: "client", city: cityNear(cf, at) }, now, { ...REST, timings });
      // A client location is always written; null only for coordinates validCoords rejects, checked above.
      if (!stored || !suggestion) throw new ApiError({ code: "bad_request", message: "Invalid coordinates." });
      return send(body(suggestion, stored, "query"));
    }

    const prev = await storedLocation(c.env, user.id);
    // A client's own fresh coordinates beat the edge's IP guess.
    if (prev && prev.source === "client" && prev.updatedAt > now - ACTIVE_WINDOW_MS) {
      const s = await suggestionsAt(c.env, user.id, prev, { city: cityNear(cf, prev), now, timings });
      return send(body(s, prev, "stored"));
    }
    if (cf) {
      const { stored, suggestion } = await recordAndSuggest(c.env, user.id, { ...cf, source: "cf" }, now, { ...REST, timings });
      if (stored && suggestion) return send(body(suggestion, stored, "cf"));
    }
    if (prev) {
      const s = await suggestionsAt(c.env, user.id, prev, { city: cityNear(cf, prev), now, timings });
      return send(body(s, prev, "stored"));
    }
    return c.json(
      {
        status: "no_location" as const,
        reason: "No location is known for you: send lat and lon (query parameters here or on the inbox connection).",
        nearbyUsers: 0,
        threshold: SUGGEST_THRESHOLD,
        radiusKm: SUGGEST_RADIUS_KM,
        activeWindowMinutes: ACTIVE_WINDOW_MS / 60_000,
        location: null,
        rooms: [],
        proposed: null,
      },
      200,
    );
  },
);
