/** Mounts every resource router under /api. Each file owns one resource. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { blocks } from "./blocks";
import { dms } from "./dms";
import { media } from "./media";
import { moderation } from "./moderation";
import { presence } from "./presence";
import { rooms } from "./rooms";
import { suggestions } from "./suggestions";
import { users } from "./users";

/** Mounts the /api resource routers on the app. */
export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  app.route("/api/me", users);
  // Before `rooms`, whose `/:roomId/...` routes would otherwise see "suggestions" as a room id.
  app.route("/api/chat/rooms/suggestions", suggestions);
  app.route("/api/chat/rooms", rooms);
  // Moderation and private rooms: more routes under /api/chat/rooms/:roomId (PATCH/DELETE the room, bans, …).
  app.route("/api/chat/rooms", moderation);
  // `dms` also owns the inbox socket, GET /api/chat/ws.
  app.route("/api/chat", dms);
  app.route("/api/chat/blocks", blocks);
  app.route("/api/chat/media", media);
  app.route("/api/presence", presence);
}
