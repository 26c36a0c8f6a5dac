/**
 * The development token route, mounted at /api/dev: `POST /token { userId, name? }` → `{ token }`,
 * so the demo in web/ can sign in with a name and nothing else. It exists only while the Worker
 * verifies tokens with the development secret (no JWT_SECRET, no JWKS) and the request came to a
 * loopback host; anywhere else it answers 404, exactly like a route that does not exist.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { SignJWT } from "jose";
import { isLoopback, usesDevelopmentSecret } from "../auth";
import { DEV_JWT_SECRET } from "../dev-secret";
import type { AppEnv } from "../env";
import { USER_ID_RE } from "../ids";
import { createRouter, errorResponses } from "../openapi";

/** Lifetime of a development token. The demo asks for a new one on every connect, so it can be short. */
export const DEV_TOKEN_TTL_SEC = 12 * 3600;

const DevTokenRequest = z.object({
  userId: z.string().regex(USER_ID_RE, "must be 1-128 characters of letters, digits and _.:@|+-"),
  name: z.string().trim().min(1, "must not be empty").max(64, "is longer than 64 characters").optional(),
});

const DevToken = z.object({
  token: z.string(),
  userId: z.string(),
  name: z.string(),
  expiresAt: z.number().int().openapi({ description: "Unix time in seconds" }),
});

/**
 * True when this request may mint a development token. Besides the secret and the host, a request
 * sent by a page (it carries `Origin`) must come from a loopback origin too: the API answers CORS
 * for any origin, and a site the developer happens to visit must not mint tokens on their laptop.
 */
function devTokensAllowed(c: Context<AppEnv>): boolean {
  if (!usesDevelopmentSecret(c.env) || !isLoopback(c.req.url)) return false;
  const origin = c.req.header("Origin");
  if (origin === undefined) return true;
  try {
    return isLoopback(origin);
  } catch {
    return false; // `Origin: null` (sandboxed frames, file://) and anything unparsable
  }
}

/** Router for /api/dev. Hidden from the OpenAPI document: it does not exist in a deployment. */
export const dev = createRouter();

// Registered before the route so that a refused request is 404 before its body is even validated.
dev.use("*", async (c, next) => {
  if (!devTokensAllowed(c)) return c.notFound();
  return next();
});

dev.openapi(
  createRoute({
    method: "post",
    path: "/token",
    hide: true,
    request: { body: { required: true, content: { "application/json": { schema: DevTokenRequest } } } },
    responses: {
      200: { description: "A token signed with the development secret", content: { "application/json": { schema: DevToken } } },
      ...errorResponses(400, 404),
    },
  }),
  async (c) => {
    const { userId, name: given } = c.req.valid("json");
    const name = given ?? userId;
    const expiresAt = Math.floor(Date.now() / 1000) + DEV_TOKEN_TTL_SEC;
    const token = await new SignJWT({ name })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(new TextEncoder().encode(DEV_JWT_SECRET));
    return c.json({ token, userId, name, expiresAt }, 200);
  },
);
