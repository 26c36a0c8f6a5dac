/** The caller's block list, held (authoritatively) by the caller's Inbox Durable Object. */
import { createRoute, z } from "@hono/zod-openapi";
import { findUser } from "../db/queries";
import { ApiError } from "../errors";
import { UserId } from "../ids";
import { inboxStub } from "../objects/stubs";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";

const BlockSchema = z.object({ userId: z.string(), createdAt: z.number() }).openapi("Block");

export const blocks = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["blocks"],
      summary: "Users the caller blocks, most recent first",
      security: bearerSecurity,
      responses: {
        200: { description: "Blocked users", content: { "application/json": { schema: z.object({ blocks: z.array(BlockSchema) }) } } },
        ...errorResponses(401),
      },
    }),
    async (c) => {
      const user = c.get("user");
      return c.json({ blocks: await inboxStub(c.env, user.id).listBlocks() }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["blocks"],
      summary: "Block a user: no DMs either way, and neither sees the other's status",
      security: bearerSecurity,
      request: { body: { content: { "application/json": { schema: z.object({ userId: UserId }) } }, required: true } },
      responses: {
        200: { description: "Already blocked", content: { "application/json": { schema: BlockSchema } } },
        201: { description: "Blocked", content: { "application/json": { schema: BlockSchema } } },
        ...errorResponses(400, 401, 404),
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
      request: { params: z.object({ userId: UserId.meta({ param: { name: "userId", in: "path" } }) }) },
      responses: {
        204: { description: "Not blocked (any more)" },
        ...errorResponses(400, 401),
      },
    }),
    async (c) => {
      const user = c.get("user");
      const { userId } = c.req.valid("param");
      await inboxStub(c.env, user.id).unblock(userId);
      return c.body(null, 204);
    },
  );
