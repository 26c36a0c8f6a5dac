/** Mounts every resource router under /api. Each file owns one resource. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { users } from "./users";

/** Mounts the /api resource routers on the app. */
export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  app.route("/api/me", users);
}
