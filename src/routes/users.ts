/** The caller's own profile, as provisioned from the token. */
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";

const Me = z.object({ id: z.string(), name: z.string() }).openapi("Me");

export const users = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["users"],
    summary: "The authenticated caller",
    security: bearerSecurity,
    responses: {
      200: { description: "The caller", content: { "application/json": { schema: Me } } },
      ...errorResponses(401),
    },
  }),
  (c) => c.json(c.get("user"), 200),
);
