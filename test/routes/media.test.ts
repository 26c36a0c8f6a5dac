import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { claimMedia } from "../../src/media/claim";
import { api } from "../helpers";
import { REFUSED, SAMPLES, bigPng, bytesOf } from "../helpers/media-fixtures";
import { errorOf, mediaRow, stored, upload, uploadOk } from "../helpers/media";
import { createRoom } from "../helpers/rooms";

const MiB = 1024 * 1024;
const sample = (name: string) => SAMPLES.find((s) => s.name === name)!.bytes;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function bodyBytes(res: Response): Promise<number[]> {
  return [...new Uint8Array(await res.arrayBuffer())];
}

describe("POST /api/chat/media: every allowed type", () => {
  for (const s of SAMPLES) {
    it(`stores and serves ${s.name} as ${s.contentType}`, async () => {
      const user = `up-${s.name.replace(/\W/g, "")}`;
      const m = await uploadOk(user, s.bytes);
      expect(m).toMatchObject({ url: `/api/chat/media/${m.id}`, contentType: s.contentType, size: s.bytes.length });
      expect(m.sha256).toBe(await sha256Hex(s.bytes));

      const row = await mediaRow(m.id);
      expect(row).toMatchObject({ owner_id: user, content_type: s.contentType, size: s.bytes.length, sha256: m.sha256, bound_kind: null });
      const key = String(row?.r2_key);
      // The key says nothing about the owner, the id or the content.
      expect(key).toMatch(/^o\/[0-9a-f]{32}$/);
      expect(key).not.toContain(user);
      expect(key).not.toContain(m.id);
      const obj = await env.MEDIA.get(key);
      expect([...new Uint8Array(await obj!.arrayBuffer())]).toEqual([...s.bytes]);

      const res = await api(user, m.url);
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe(s.contentType);
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(res.headers.get("ETag")).toBe(`"${m.sha256}"`);
      expect(res.headers.get("Accept-Ranges")).toBe("bytes");
      expect(res.headers.get("Content-Length")).toBe(String(s.bytes.length));
      const disposition = res.headers.get("Content-Disposition") ?? "";
      if (/^(image|video|audio)\//.test(s.contentType)) expect(disposition).toMatch(/^inline;/);
      else expect(disposition).toMatch(/^attachment; filename="[\w-]+\.pdf"$/);
      expect(await bodyBytes(res)).toEqual([...s.bytes]);
    });
  }

  it("accepts multipart/form-data and takes the first file part", async () => {
    const form = new FormData();
    form.append("caption", "not a file");
    form.append("file", new File([sample("png")], "holiday.png", { type: "image/png" }));
    form.append("second", new File([sample("pdf")], "doc.pdf", { type: "application/pdf" }));
    const res = await upload("mp-user", form);
    expect(res.status).toBe(201);
    const m = (await res.json()) as { id: string; contentType: string; size: number };
    expect(m).toMatchObject({ contentType: "image/png", size: sample("png").length });
    expect(res.headers.get("Location")).toBe(`/api/chat/media/${m.id}`);
    expect(await bodyBytes(await api("mp-user", `/api/chat/media/${m.id}`))).toEqual([...sample("png")]);
  });
});

describe("POST /api/chat/media: the type comes from the bytes", () => {
  it("HTML labelled image/png (header and file name) is refused with 415 and nothing is stored", async () => {
    const before = await stored();
    const form = new FormData();
    form.append("file", new File([REFUSED.find((r) => r.name === "html")!.bytes], "cat.png", { type: "image/png" }));
    const res = await upload("liar", form);
    expect(res.status).toBe(415);
    const err = await errorOf(res);
    expect(err.code).toBe("unsupported_media_type");
    expect(err.allowed).toContain("image/png");
    const raw = await upload("liar", REFUSED.find((r) => r.name === "svg")!.bytes, { contentType: "image/svg+xml" });
    expect(raw.status).toBe(415);
    expect(await stored()).toEqual(before);
  });

  it("a PDF labelled image/jpeg is stored as a PDF and served as an attachment", async () => {
    const form = new FormData();
    form.append("file", new File([sample("pdf")], "photo.jpg", { type: "image/jpeg" }));
    const res = await upload("liar2", form);
    expect(res.status).toBe(201);
    const m = (await res.json()) as { url: string; contentType: string };
    expect(m.contentType).toBe("application/pdf");
    const got = await api("liar2", m.url);
    expect(got.headers.get("Content-Type")).toBe("application/pdf");
    expect(got.headers.get("Content-Disposition")).toMatch(/^attachment;/);
    expect(got.headers.get("Content-Disposition")).not.toContain("photo");
  });

  it("a PNG labelled text/html is stored as image/png", async () => {
    const m = await uploadOk("liar3", sample("png"), "text/html");
    expect(m.contentType).toBe("image/png");
  });

  for (const r of REFUSED) {
    it(`refuses ${r.name} with 415`, async () => {
      const res = await upload("refused", r.bytes, { contentType: "image/jpeg" });
      expect(res.status).toBe(415);
      expect((await errorOf(res)).code).toBe("unsupported_media_type");
    });
  }

  it("an empty body is 400", async () => {
    const res = await upload("empty", new Uint8Array(0), { contentType: "image/png" });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/empty/);
    const form = new FormData();
    form.append("file", new File([], "nothing.png"));
    expect((await upload("empty", form)).status).toBe(400);
  });

  it("multipart without a file part is 400", async () => {
    const form = new FormData();
    form.append("text", "hello");
    const res = await upload("nofile", form);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/no file part/);
  });

  it("needs a token", async () => {
    expect((await api(null, "/api/chat/media", { method: "POST", body: sample("png") })).status).toBe(401);
  });
});

describe("POST /api/chat/media: size limit, enforced while streaming", () => {
  it("a body of exactly MEDIA_MAX_BYTES (10 MiB) is stored", async () => {
    const m = await uploadOk("big-ok", bigPng(10 * MiB));
    expect(m.size).toBe(10 * MiB);
    const del = await api("big-ok", m.url, { method: "DELETE" });
    expect(del.status).toBe(204);
  });

  it("one byte over, with Content-Length, is 413 and leaves nothing in R2 or D1", async () => {
    const before = await stored();
    const res = await upload("big-no", bigPng(10 * MiB + 1), { contentType: "image/png" });
    expect(res.status).toBe(413);
    const err = await errorOf(res);
    expect(err).toMatchObject({ code: "too_large", maxBytes: 10 * MiB });
    expect(await stored()).toEqual(before);
  });

  it("a chunked body with no Content-Length is cut off at the limit; the rest is never read", async () => {
    const before = await stored();
    let pulled = 0;
    let cancelled = false;
    const head = sample("png");
    // An endless body: if the server buffered before checking, this request would never finish.
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(pulled++ === 0 ? head : new Uint8Array(1024));
      },
      cancel() {
        cancelled = true;
      },
    });
    const res = await upload("stream-no", stream, { contentType: "image/png", vars: { MEDIA_MAX_BYTES: String(64 * 1024) } });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: "too_large", maxBytes: 64 * 1024 });
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThan(80);
    expect(await stored()).toEqual(before);
  });

  it("a chunked body under the limit is stored", async () => {
    const parts = [sample("png"), new Uint8Array(4000), new Uint8Array(4000)];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = parts.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const res = await upload("stream-ok", stream, { vars: { MEDIA_MAX_BYTES: String(64 * 1024) } });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { size: number }).size).toBe(sample("png").length + 8000);
  });

  it("a multipart file over the limit is 413 and nothing is stored", async () => {
    const before = await stored();
    const form = new FormData();
    form.append("file", new File([bigPng(2001)], "big.png"));
    const res = await upload("mp-big", form, { vars: { MEDIA_MAX_BYTES: "2000" } });
    expect(res.status).toBe(413);
    expect(await stored()).toEqual(before);
  });
});

describe("POST /api/chat/media: per-user quota", () => {
  const vars = { MEDIA_QUOTA_BYTES: "3000" };

  it("refuses the upload that would exceed it with 413, the quota and the usage", async () => {
    const user = "quota-user";
    const ok1 = await upload(user, bigPng(1000), { vars });
    const ok2 = await upload(user, bigPng(1000), { vars });
    expect([ok1.status, ok2.status]).toEqual([201, 201]);
    const before = await stored();
    const res = await upload(user, bigPng(1500), { vars });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: "quota_exceeded", quotaBytes: 3000, usedBytes: 2000, requestedBytes: 1500 });
    expect(await stored()).toEqual(before);
    // Exactly up to the quota is fine, and another user is not affected.
    expect((await upload(user, bigPng(1000), { vars })).status).toBe(201);
    expect((await upload("quota-other", bigPng(1500), { vars })).status).toBe(201);
    expect((await upload(user, bigPng(8), { vars })).status).toBe(413);
    // Deleting unattached media frees its share.
    const first = (await ok1.json()) as { url: string };
    expect((await api(user, first.url, { method: "DELETE" })).status).toBe(204);
    expect((await upload(user, bigPng(1000), { vars })).status).toBe(201);
  });

  it("concurrent uploads cannot overshoot it together", async () => {
    const before = await stored();
    const results = await Promise.all(Array.from({ length: 6 }, () => upload("quota-race", bigPng(1000), { vars: { MEDIA_QUOTA_BYTES: "2000" } })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 413, 413, 413, 413]);
    const after = await stored();
    expect(after).toEqual({ r2: before.r2 + 2, d1: before.d1 + 2 });
  });
});

describe("GET /api/chat/media/:id: ranges and validators", () => {
  const bytes = bytesOf(sample("pdf"), new Uint8Array(200).map((_, i) => i));
  let url = "";
  const get = async (headers: Record<string, string> = {}, method = "GET") => {
    if (!url) url = (await uploadOk("ranger", bytes)).url;
    return api("ranger", url, { headers, method });
  };

  it("a closed range is 206 with Content-Range and exactly those bytes", async () => {
    const res = await get({ Range: "bytes=2-11" });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe(`bytes 2-11/${bytes.length}`);
    expect(res.headers.get("Content-Length")).toBe("10");
    expect(res.headers.get("ETag")).toMatch(/^"[0-9a-f]{64}"$/);
    expect(await bodyBytes(res)).toEqual([...bytes.subarray(2, 12)]);
  });

  it("an open range and a suffix range", async () => {
    const open = await get({ Range: `bytes=${bytes.length - 3}-` });
    expect(open.status).toBe(206);
    expect(await bodyBytes(open)).toEqual([...bytes.subarray(bytes.length - 3)]);
    const suffix = await get({ Range: "bytes=-4" });
    expect(suffix.headers.get("Content-Range")).toBe(`bytes ${bytes.length - 4}-${bytes.length - 1}/${bytes.length}`);
    expect(await bodyBytes(suffix)).toEqual([...bytes.subarray(bytes.length - 4)]);
  });

  it("an end past the size is clamped", async () => {
    const res = await get({ Range: `bytes=${bytes.length - 2}-99999` });
    expect(res.status).toBe(206);
    expect(await bodyBytes(res)).toEqual([...bytes.subarray(bytes.length - 2)]);
  });

  it("a range past the end is 416 with the size", async () => {
    const res = await get({ Range: `bytes=${bytes.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get("Content-Range")).toBe(`bytes */${bytes.length}`);
    expect((await errorOf(res)).code).toBe("range_not_satisfiable");
  });

  it("malformed or multiple ranges get the whole body", async () => {
    for (const r of ["bytes=abc", "bytes=5-1", "lines=1-2", "bytes=0-1,4-5"]) {
      const res = await get({ Range: r });
      expect(res.status, r).toBe(200);
      expect((await bodyBytes(res)).length).toBe(bytes.length);
    }
  });

  it("If-None-Match with the ETag is 304; If-Range with another validator ignores the range", async () => {
    const etag = (await get()).headers.get("ETag")!;
    const nm = await get({ "If-None-Match": etag });
    expect(nm.status).toBe(304);
    expect(nm.headers.get("ETag")).toBe(etag);
    const stale = await get({ Range: "bytes=0-0", "If-Range": '"something-else"' });
    expect(stale.status).toBe(200);
    expect((await bodyBytes(stale)).length).toBe(bytes.length);
    const fresh = await get({ Range: "bytes=0-0", "If-Range": etag });
    expect(fresh.status).toBe(206);
  });

  it("HEAD gives the headers without the bytes", async () => {
    const res = await get({ Range: "bytes=0-9" }, "HEAD");
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe(`bytes 0-9/${bytes.length}`);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
});

describe("GET /api/chat/media/:id: who may read", () => {
  async function notFoundBody(res: Response) {
    expect(res.status).toBe(404);
    const err = await errorOf(res);
    return { code: err.code, message: err.message };
  }

  it("unattached: the owner only; anyone else gets the same 404 as an unknown id", async () => {
    const m = await uploadOk("owner-a", sample("png"));
    expect((await api("owner-a", m.url)).status).toBe(200);
    const other = await notFoundBody(await api("stranger-a", m.url));
    const unknown = await notFoundBody(await api("stranger-a", "/api/chat/media/AAAAAAAAAAAAAAAAAAAAAA"));
    const malformed = await notFoundBody(await api("stranger-a", "/api/chat/media/..%2F..%2Fetc"));
    expect(other).toEqual(unknown);
    expect(malformed).toEqual(unknown);
    expect(other).toEqual({ code: "not_found", message: "Media not found." });
  });

  it("needs a token", async () => {
    const m = await uploadOk("owner-b", sample("png"));
    expect((await api(null, m.url)).status).toBe(401);
  });

  it("posted in a public room: every authenticated user (a private room's: docs/moderation.md, moderation-edges.test.ts)", async () => {
    const m = await uploadOk("owner-c", sample("gif"));
    const claimed = await claimMedia(env, "owner-c", [m.id], { kind: "room", roomId: await createRoom("lobby-media") });
    expect(claimed.ok).toBe(true);
    for (const u of ["owner-c", "room-reader-1", "room-reader-2"]) {
      const res = await api(u, m.url);
      expect(res.status, u).toBe(200);
      expect(await bodyBytes(res)).toEqual([...sample("gif")]);
    }
    expect((await api(null, m.url)).status).toBe(401);
  });

  it("sent in a DM: the owner and the recipient; a third user gets 404", async () => {
    const m = await uploadOk("dm-sender", sample("jpeg"));
    const claimed = await claimMedia(env, "dm-sender", [m.id], { kind: "dm", conversationId: "dm-sender:dm-recipient", peerId: "dm-recipient" });
    expect(claimed.ok).toBe(true);
    expect((await api("dm-sender", m.url)).status).toBe(200);
    expect((await api("dm-recipient", m.url)).status).toBe(200);
    await notFoundBody(await api("dm-third", m.url));
  });
});

describe("DELETE /api/chat/media/:id", () => {
  it("the owner deletes unattached media: row and bytes are gone", async () => {
    const m = await uploadOk("del-owner", sample("webp"));
    const key = String((await mediaRow(m.id))?.r2_key);
    const before = await stored();
    const res = await api("del-owner", m.url, { method: "DELETE" });
    expect(res.status).toBe(204);
    expect(await mediaRow(m.id)).toBeNull();
    expect(await env.MEDIA.head(key)).toBeNull();
    expect(await stored()).toEqual({ r2: before.r2 - 1, d1: before.d1 - 1 });
    expect((await api("del-owner", m.url)).status).toBe(404);
    expect((await api("del-owner", m.url, { method: "DELETE" })).status).toBe(404);
  });

  it("someone else's media is 404 and stays", async () => {
    const m = await uploadOk("del-owner2", sample("webp"));
    const res = await api("del-thief", m.url, { method: "DELETE" });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("not_found");
    expect(await mediaRow(m.id)).not.toBeNull();
    expect((await api("del-owner2", m.url)).status).toBe(200);
  });

  it("attached media is 409 and stays", async () => {
    const m = await uploadOk("del-owner3", sample("wav"));
    expect((await claimMedia(env, "del-owner3", [m.id], { kind: "room", roomId: await createRoom("r1-media") })).ok).toBe(true);
    const res = await api("del-owner3", m.url, { method: "DELETE" });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("conflict");
    expect((await api("someone", m.url)).status).toBe(200);
  });
});

describe("OpenAPI", () => {
  it("documents upload, download and delete", async () => {
    const doc = (await (await api(null, "/api/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/api/chat/media"] ?? {})).toEqual(["post"]);
    expect(Object.keys(doc.paths["/api/chat/media/{id}"] ?? {}).sort()).toEqual(["delete", "get"]);
  });
});
