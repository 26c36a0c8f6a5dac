/**
 * /api/chat/media: upload (POST /), download (GET /:id) and delete (DELETE /:id) of chat media.
 * Bytes live in R2, metadata in D1; `claimMedia` binds media to the message that carries it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { logError } from "../log";
import { mediaUrl } from "../media/claim";
import { etagMatches, parseRange } from "../media/range";
import { ALLOWED_CONTENT_TYPES, ALLOWED_TYPES, sniff } from "../media/sniff";
import type { MediaKind } from "../media/sniff";
import { canRead, deleteMedia, findMedia, mediaLimits, storeMedia } from "../media/store";
import type { MediaRow } from "../media/store";
import { readUpload } from "../media/upload";
import { rateLimit } from "../rate-limits";
import { mayReadRoom } from "./room-gate";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";

const UploadedMedia = z
  .object({
    id: z.string().openapi({ example: "q3k1mV0yTnS2cJ8fH4xW9A" }),
    url: z.string().openapi({ example: "/api/chat/media/q3k1mV0yTnS2cJ8fH4xW9A" }),
    contentType: z.string().openapi({ example: "image/png" }),
    size: z.number().int(),
    sha256: z.string(),
    createdAt: z.number().int(),
  })
  .openapi("UploadedMedia");

const IdParam = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "q3k1mV0yTnS2cJ8fH4xW9A" }),
});

const Binary = z.string().openapi({ format: "binary" });

function notFound(): ApiError {
  // The same answer for "does not exist" and "not yours": ids leak nothing.
  return new ApiError({ code: "not_found", message: "Media not found." });
}

/** Kind of a stored content type (for Content-Disposition); unknown types are documents. */
function kindOf(contentType: string): { kind: MediaKind; ext: string } {
  const found = Object.values(ALLOWED_TYPES).find((x) => x.contentType === contentType);
  return found ?? { kind: "document", ext: "bin" };
}

function describe(row: MediaRow) {
  return { id: row.id, url: mediaUrl(row.id), contentType: row.contentType, size: row.size, sha256: row.sha256, createdAt: row.createdAt };
}

export const media = createRouter();

// The upload is documented here but handled by a plain route: a zod body schema would make the
// validator parse the whole multipart body before the size limit could be enforced.
media.openAPIRegistry.registerPath({
  method: "post",
  path: "/",
  tags: ["media"],
  summary: "Upload media (multipart/form-data with a file part, or the raw bytes as the body)",
  description:
    `The type is detected from the bytes, never from Content-Type or the file name. Allowed: ${ALLOWED_CONTENT_TYPES.join(", ")}. ` +
    "Over the size limit (MEDIA_MAX_BYTES) → 413 too_large; over the per-user quota (MEDIA_QUOTA_BYTES) → 413 quota_exceeded with quotaBytes and usedBytes.",
  security: bearerSecurity,
  request: {
    body: {
      required: true,
      content: {
        "multipart/form-data": { schema: z.object({ file: Binary }) },
        "application/octet-stream": { schema: Binary },
      },
    },
  },
  responses: {
    201: { description: "Stored", content: { "application/json": { schema: UploadedMedia } } },
    ...errorResponses(400, 401, 413, 415, 429),
  },
});

// Limited before the body is read: a refused upload costs no bytes of reading.
media.post("/", rateLimit("mediaUpload"), async (c) => {
  const user = c.get("user");
  const { maxBytes, quotaBytes } = mediaLimits(c.env);
  const bytes = await readUpload(c.req.raw, maxBytes);
  if (bytes.byteLength === 0) throw new ApiError({ code: "bad_request", message: "The upload is empty." });
  const type = sniff(bytes);
  if (!type) {
    throw new ApiError({
      code: "unsupported_media_type",
      message: `The content is not of an allowed type (${ALLOWED_CONTENT_TYPES.join(", ")}); the type is detected from the bytes.`,
      details: { allowed: ALLOWED_CONTENT_TYPES },
    });
  }
  const row = await storeMedia(c.env, { ownerId: user.id, bytes, type, quotaBytes });
  c.header("Location", mediaUrl(row.id));
  return c.json(describe(row), 201);
});

/** Headers every successful download carries. */
function baseHeaders(row: MediaRow): Headers {
  const { kind, ext } = kindOf(row.contentType);
  const inline = kind === "image" || kind === "video" || kind === "audio";
  return new Headers({
    "Content-Type": row.contentType,
    ETag: `"${row.sha256}"`,
    "Accept-Ranges": "bytes",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": `${inline ? "inline" : "attachment"}; filename="${row.id}.${ext}"`,
    // Defence in depth: nothing served from here may run script or load anything, even if opened directly.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    // The bytes of an id never change, but they are access-controlled: browsers only, no shared caches.
    "Cache-Control": "private, max-age=86400",
  });
}

async function download(c: Context<AppEnv>, id: string): Promise<Response> {
  const row = await findMedia(c.env, id);
  const user = c.get("user");
  if (!row || !canRead(row, user.id)) throw notFound();
  // Media posted in a room is as readable as the room: not at all once it is deleted, and in a
  // private room by its members only (its owner, the uploader, always).
  if (row.boundKind === "room" && row.ownerId !== user.id && !(await mayReadRoom(c.env, row.boundId ?? "", user))) throw notFound();
  const headers = baseHeaders(row);
  const etag = headers.get("ETag") ?? "";

  if (etagMatches(c.req.header("If-None-Match"), etag)) return new Response(null, { status: 304, headers });

  // If-Range with a different validator means the client's partial copy is stale: send it all.
  const ifRange = c.req.header("If-Range");
  const range = ifRange !== undefined && ifRange !== etag ? { kind: "full" as const } : parseRange(c.req.header("Range"), row.size);
  if (range.kind === "unsatisfiable") {
    throw new ApiError({
      code: "range_not_satisfiable",
      message: `The range is outside the ${row.size} bytes of this media.`,
      headers: { "Content-Range": `bytes */${row.size}` },
    });
  }

  const partial = range.kind === "partial";
  const start = partial ? range.start : 0;
  const length = partial ? range.end - range.start + 1 : row.size;
  headers.set("Content-Length", String(length));
  if (partial) headers.set("Content-Range", `bytes ${range.start}-${range.end}/${row.size}`);
  const status = partial ? 206 : 200;
  if (c.req.raw.method === "HEAD") return new Response(null, { status, headers });

  const obj = await c.env.MEDIA.get(row.r2Key, partial ? { range: { offset: start, length } } : undefined);
  if (!obj) {
    // Metadata without bytes should not happen (R2 is written first, deleted last); do not hide it.
    logError("media: R2 object missing", undefined, { mediaId: row.id, r2Key: row.r2Key });
    throw notFound();
  }
  return new Response(obj.body, { status, headers });
}

media.openapi(
  createRoute({
    method: "get",
    path: "/{id}",
    tags: ["media"],
    summary: "Download media",
    description:
      "Readable by the owner; by every authenticated user once posted in a room; by the recipient once sent in a DM. " +
      "Anyone else, and unknown ids, get 404. Supports Range (one range), If-Range and If-None-Match.",
    security: bearerSecurity,
    request: { params: IdParam },
    responses: {
      200: { description: "The bytes", content: { "application/octet-stream": { schema: Binary } } },
      206: { description: "The requested range", content: { "application/octet-stream": { schema: Binary } } },
      304: { description: "Not modified (If-None-Match)" },
      ...errorResponses(401, 404, 416),
    },
  }),
  (c) => download(c, c.req.valid("param").id),
);

media.openapi(
  createRoute({
    method: "delete",
    path: "/{id}",
    tags: ["media"],
    summary: "Delete unattached media (owner only)",
    security: bearerSecurity,
    request: { params: IdParam },
    responses: {
      204: { description: "Deleted" },
      ...errorResponses(401, 404, 409),
    },
  }),
  async (c) => {
    const result = await deleteMedia(c.env, c.get("user").id, c.req.valid("param").id);
    if (result === "not_found") throw notFound();
    if (result === "attached") {
      throw new ApiError({ code: "conflict", message: "Media attached to a message cannot be deleted." });
    }
    return c.body(null, 204);
  },
);
