/**
 * Reading an upload body under a byte limit, raw or multipart. Pure web streams: no Cloudflare imports.
 *
 * Nothing over the limit is ever buffered: a `Content-Length` over it is refused before the body
 * is touched, and a body without one (chunked) is counted as it streams and abandoned at the limit.
 */
import { ApiError } from "../errors";

/**
 * Room allowed for the multipart envelope (boundaries, part headers) on top of the file limit,
 * so that a file of exactly the limit can be sent as multipart.
 */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** The 413 for an upload over `maxBytes`. */
export function tooLarge(maxBytes: number): ApiError {
  return new ApiError({
    code: "too_large",
    message: `Upload is larger than the limit of ${maxBytes} bytes.`,
    details: { maxBytes },
  });
}

/**
 * Reads a stream to the end, refusing it with 413 as soon as more than `bodyLimit` bytes arrive.
 * `fileLimit` is the limit reported to the client. The stream is cancelled on refusal, so the
 * rest of an oversize body is never read.
 */
export async function readLimited(body: ReadableStream<Uint8Array> | null, bodyLimit: number, fileLimit = bodyLimit): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > bodyLimit) {
      chunks.length = 0;
      await reader.cancel("upload over the size limit").catch(() => {});
      throw tooLarge(fileLimit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** Whether a `Content-Type` header announces a multipart form. */
export function isMultipart(contentType: string | null | undefined): boolean {
  return /^\s*multipart\/form-data\s*(;|$)/i.test(contentType ?? "");
}

/**
 * The uploaded file's bytes from a request: the raw body, or the first file part of a
 * `multipart/form-data` body. Throws 413 over `maxBytes` (nothing beyond the limit is read) and
 * 400 for a multipart body that cannot be parsed or carries no file.
 */
export async function readUpload(req: Request, maxBytes: number): Promise<Uint8Array> {
  const contentType = req.headers.get("content-type");
  const multipart = isMultipart(contentType);
  const bodyLimit = multipart ? maxBytes + MULTIPART_OVERHEAD_BYTES : maxBytes;
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > bodyLimit) throw tooLarge(maxBytes);
  const raw = await readLimited(req.body, bodyLimit, maxBytes);
  if (!multipart) return raw;

  let form: FormData;
  try {
    form = await new Response(raw, { headers: { "content-type": contentType ?? "" } }).formData();
  } catch {
    throw new ApiError({ code: "bad_request", message: "The multipart/form-data body could not be parsed." });
  }
  // The first part that is a file; text fields are ignored.
  let file: File | undefined;
  for (const [, value] of form) {
    if (typeof value !== "string") {
      file = value;
      break;
    }
  }
  if (!file) throw new ApiError({ code: "bad_request", message: "The multipart/form-data body has no file part." });
  if (file.size > maxBytes) throw tooLarge(maxBytes);
  return new Uint8Array(await file.arrayBuffer());
}
