/** createApp(): middleware order, the one error renderer, and the route mounts. */
import { swaggerUI } from "@hono/swagger-ui";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { authenticate } from "./auth";
import { ensureUser } from "./db/queries";
import type { AppEnv } from "./env";
import { ApiError, errorBody } from "./errors";
import { logError } from "./log";
import { createRouter } from "./openapi";
import { dev } from "./routes/dev";
import { health } from "./routes/health";
import { registerRoutes } from "./routes";
import { isUpgrade } from "./objects/upgrade";
import { ROOM_SOCKET_PATH } from "./routes/rooms";

/** Paths under /api that need no token. The development token route refuses by itself outside development. */
const PUBLIC_API_PATHS = new Set(["/api/openapi.json", "/api/docs", "/api/dev/token"]);

export function createApp() {
  const app = createRouter();

  app.use("*", async (c, next) => {
    const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    // A 101 Switching Protocols response has immutable headers.
    if (c.res.status !== 101) c.res.headers.set("X-Request-Id", requestId);
  });

  app.use(
    "/api/*",
    cors({
      origin: "*",
      allowHeaders: ["Authorization", "Content-Type", "Range", "If-None-Match", "If-Range"],
      allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: ["X-Request-Id", "ETag", "Content-Range", "Accept-Ranges", "Content-Disposition", "Content-Length", "Location", "Retry-After"],
      maxAge: 600,
    }),
  );

  app.use("/api/*", async (c, next) => {
    if (c.req.method === "OPTIONS" || PUBLIC_API_PATHS.has(c.req.path)) return next();
    const { user, protocol } = await authenticate(c.req.raw, c.env);
    c.set("user", user);
    if (protocol !== undefined) c.set("wsProtocol", protocol);
    // A room socket's user is provisioned by the room, in one D1 batch with its first joins
    // (chat-room/lifecycle.ts `noteUser`): a reconnect storm is not a D1 write per socket.
    if (!(ROOM_SOCKET_PATH.test(c.req.path) && isUpgrade(c.req.raw))) await ensureUser(c.env, user);
    return next();
  });

  app.route("/health", health);
  app.route("/api/dev", dev);
  registerRoutes(app);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  app.doc31("/api/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "edge-chat",
      version: "0.1.0",
      description:
        "Real-time chat on Cloudflare Workers and Durable Objects. The WebSocket protocol (room socket /api/chat/rooms/{roomId}/ws, inbox socket /api/chat/ws) is described in docs/protocol.md.",
    },
    security: [{ bearerAuth: [] }],
  });
  app.get("/api/docs", swaggerUI({ url: "/api/openapi.json" }));

  app.notFound((c) =>
    c.json(errorBody("not_found", `No route for ${c.req.method} ${c.req.path}.`, c.get("requestId") ?? ""), 404),
  );

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? crypto.randomUUID();
    if (err instanceof ApiError) {
      if (err.headers) for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return c.json(errorBody(err.code, err.message, requestId, err.details), err.status);
    }
    if (err instanceof HTTPException && err.status < 500) {
      const code = err.status === 413 ? "too_large" : err.status === 401 ? "unauthorized" : "bad_request";
      return c.json(errorBody(code, err.message || "Bad request.", requestId), err.status);
    }
    if (err instanceof SyntaxError) {
      return c.json(errorBody("bad_request", "Request body is not valid JSON.", requestId), 400);
    }
    logError("unhandled error", err, { requestId, path: c.req.path });
    return c.json(errorBody("internal", "Internal error.", requestId), 500);
  });

  return app;
}
