/** Statuses of several users in one call, as the caller may see them (blocked either way: offline). */
import { createRoute, z } from "@hono/zod-openapi";
import { USER_ID_RE } from "../ids";
import { inboxStub } from "../objects/stubs";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";
import { Status } from "../protocol";
import { rateLimit } from "../rate-limits";

/** Most user ids per request. */
export const PRESENCE_QUERY_MAX = 100;

const PresenceSchema = z
  .object({ userId: z.string(), status: Status, lastSeen: z.number().nullable() })
  .openapi("Presence");

export const presence = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["presence"],
    summary: `Statuses of up to ${PRESENCE_QUERY_MAX} users (comma-separated ids)`,
    security: bearerSecurity,
    middleware: [rateLimit("presence")] as const,
    request: {
      query: z.object({
        userIds: z
          .string()
          .min(1)
          .transform((s) => [...new Set(s.split(",").map((x) => x.trim()).filter((x) => x.length > 0))])
          .pipe(
            z
              .array(z.string().regex(USER_ID_RE, "must be comma-separated user ids"))
              .min(1, "at least one user id")
              .max(PRESENCE_QUERY_MAX, `at most ${PRESENCE_QUERY_MAX} user ids`),
          )
          .openapi({ type: "string", example: "alice,bob" }),
      }),
    },
    responses: {
      200: { description: "Statuses, in the order asked", content: { "application/json": { schema: z.object({ presence: z.array(PresenceSchema) }) } } },
      ...errorResponses(400, 401, 429),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const { userIds } = c.req.valid("query");
    return c.json({ presence: await inboxStub(c.env, user.id).presenceOf(userIds) }, 200);
  },
);
