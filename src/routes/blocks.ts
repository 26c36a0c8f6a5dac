/** The caller's block list, held (authoritatively) by the caller's Inbox Durable Object. */
import { createRoute, z } from "@hono/zod-openapi";
import { findUser } from "../db/queries";
import { ApiError } from "../errors";
import { USER_ID_RE, UserId } from "../ids";
import { inboxStub } from "../objects/stubs";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";
import { cursorKey, pageQuery, pageSchema, takePage } from "../pagination";
import { PAGE_MAX } from "../protocol";
import { rateLimit } from "../rate-limits";

const BlockSchema = z.object({ userId: z.string(), createdAt: z.number() }).openapi("Block");
type Block = z.infer<typeof BlockSchema>;

/** Default and largest page of the block list. */
export const BLOCKS_PAGE = { default: 50, max: PAGE_MAX } as const;

/** Sort key of a block in list order (newest first, then by user id): `<createdAt>.<userId>`. */
const blockKey = (b: Block) => `${b.createdAt}.${b.userId}`;
const BLOCK_KEY_RE = /^(\d{1,16})\.(.+)$/;

/** The list position a block key names. */
function positionOf(key: string): { createdAt: number; userId: string } {
  const [, t, userId] = BLOCK_KEY_RE.exec(key) ?? [];
  return { createdAt: Number(t), userId };
}

export const blocks = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["blocks"],
      summary: "Users the caller blocks, most recent first, cursor-paginated",
      security: bearerSecurity,
      request: { query: z.object(pageQuery(BLOCKS_PAGE.default, BLOCKS_PAGE.max)) },
      responses: {
        200: { description: "A page of blocked users", content: { "application/json": { schema: pageSchema("blocks", BlockSchema) } } },
        ...errorResponses(400, 401),
      },
    }),
    async (c) => {
      const user = c.get("user");
      const { limit, cursor } = c.req.valid("query");
      const key = cursorKey(cursor, (k) => BLOCK_KEY_RE.test(k) && USER_ID_RE.test(k.slice(k.indexOf(".") + 1)));
      // The inbox reads the page itself (one row more, to know whether another page exists).
      const rows = await inboxStub(c.env, user.id).listBlocks(limit + 1, key === null ? undefined : positionOf(key));
      const { items, nextCursor } = takePage(rows, limit, blockKey);
      return c.json({ blocks: items, nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["blocks"],
      summary: "Block a user: no DMs either way, and neither sees the other's status",
      security: bearerSecurity,
      middleware: [rateLimit("blocks")] as const,
      request: { body: { content: { "application/json": { schema: z.object({ userId: UserId }) } }, required: true } },
      responses: {
        200: { description: "Already blocked", content: { "application/json": { schema: BlockSchema } } },
        201: { description: "Blocked", content: { "application/json": { schema: BlockSchema } } },
        ...errorResponses(400, 401, 404, 429),
      },
    }),
    async (c) => {
      const user = c.get("user");
      const { userId } = c.req.valid("json");
      if (userId === user.id) throw new ApiError({ code: "bad_request", message: "userId: you cannot block yourself" });
      if (!(await findUser(c.env, userId))) throw new ApiError({ code: "not_found", message: `user ${userId} not found` });
      const { created, ...entry } = await inboxStub(c.env, user.id).block(userId);
      return created ? c.json(entry, 201) : c.json(entry, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{userId}",
      tags: ["blocks"],
      summary: "Unblock a user (idempotent)",
      security: bearerSecurity,
      middleware: [rateLimit("blocks")] as const,
      request: { params: z.object({ userId: UserId.meta({ param: { name: "userId", in: "path" } }) }) },
      responses: {
        204: { description: "Not blocked (any more)" },
        ...errorResponses(400, 401, 429),
      },
    }),
    async (c) => {
      const user = c.get("user");
      const { userId } = c.req.valid("param");
      await inboxStub(c.env, user.id).unblock(userId);
      return c.body(null, 204);
    },
  );
