/** Helpers for media tests: uploads (optionally under other limits), and what R2 and D1 hold. */
import { env } from "cloudflare:test";
import { createApp } from "../../src/app";
import { BASE, api, tokenFor } from "./index";

export interface Uploaded {
  id: string;
  url: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: number;
}

/**
 * POSTs an upload as `user`. With `vars`, the request goes through a fresh app over the same real
 * bindings with those vars overridden (e.g. a small `MEDIA_QUOTA_BYTES`); otherwise through the worker.
 */
export async function upload(
  user: string,
  body: BodyInit,
  opts: { contentType?: string; headers?: Record<string, string>; vars?: Partial<Record<"MEDIA_MAX_BYTES" | "MEDIA_QUOTA_BYTES", string>> } = {},
): Promise<Response> {
  const headers = new Headers(opts.headers);
  if (opts.contentType) headers.set("Content-Type", opts.contentType);
  if (!opts.vars) return api(user, "/api/chat/media", { method: "POST", body, headers });
  headers.set("Authorization", `Bearer ${await tokenFor(user)}`);
  const init: RequestInit & { duplex?: "half" } = { method: "POST", body, headers };
  return createApp().fetch(new Request(`${BASE}/api/chat/media`, init), { ...env, ...opts.vars });
}

/** Uploads and expects 201; returns the descriptor. */
export async function uploadOk(user: string, bytes: Uint8Array, contentType = "application/octet-stream"): Promise<Uploaded> {
  const res = await upload(user, bytes, { contentType });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as Uploaded;
}

/** How many objects R2 holds and how many media rows D1 holds (all owners). */
export async function stored(): Promise<{ r2: number; d1: number }> {
  let r2 = 0;
  let cursor: string | undefined;
  do {
    const page = await env.MEDIA.list({ cursor });
    r2 += page.objects.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const row = await env.DB.prepare("SELECT count(*) AS n FROM media").first<{ n: number }>();
  return { r2, d1: row?.n ?? 0 };
}

/** The D1 media row for an id, as stored. */
export async function mediaRow(id: string): Promise<Record<string, unknown> | null> {
  return env.DB.prepare("SELECT * FROM media WHERE id = ?").bind(id).first();
}

/** Error body fields. */
export async function errorOf(res: Response): Promise<Record<string, unknown> & { code: string; message: string }> {
  const body = (await res.json()) as { error: Record<string, unknown> & { code: string; message: string } };
  return body.error;
}
