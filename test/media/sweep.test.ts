import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { claimMedia } from "../../src/media/claim";
import { newR2Key, ORPHAN_GRACE_MS, R2_KEY_PREFIX, sweepOrphanObjects, sweepUnattachedMedia, UNATTACHED_TTL_MS } from "../../src/media/store";
import { api } from "../helpers";
import { SAMPLES } from "../helpers/media-fixtures";
import { mediaRow, stored, uploadOk } from "../helpers/media";

describe("sweepUnattachedMedia", () => {
  it("removes only unattached uploads older than the TTL, rows and bytes", async () => {
    const png = SAMPLES.find((s) => s.contentType === "image/png")!;
    const before = await stored();
    const oldLoose = await uploadOk("sweeper", png.bytes, png.contentType);
    const oldAttached = await uploadOk("sweeper", png.bytes, png.contentType);
    const fresh = await uploadOk("sweeper", png.bytes, png.contentType);
    const claimed = await claimMedia(env, "sweeper", [oldAttached.id], { kind: "room", roomId: "general" });
    expect(claimed.ok).toBe(true);
    // Age two of them past the TTL.
    const aged = Date.now() - UNATTACHED_TTL_MS - 1000;
    await env.DB.prepare("UPDATE media SET created_at = ? WHERE id IN (?, ?)").bind(aged, oldLoose.id, oldAttached.id).run();

    expect(await sweepUnattachedMedia(env)).toBe(1);

    expect(await mediaRow(oldLoose.id)).toBeNull();
    expect(await mediaRow(oldAttached.id)).not.toBeNull();
    expect(await mediaRow(fresh.id)).not.toBeNull();
    const after = await stored();
    expect(after.d1 - before.d1).toBe(2);
    expect(after.r2 - before.r2).toBe(2);
    // A second run finds nothing more.
    expect(await sweepUnattachedMedia(env)).toBe(0);
  });
});

describe("sweepOrphanObjects", () => {
  it("deletes media objects no row points at once they are past the grace period, and nothing else", async () => {
    const png = SAMPLES.find((s) => s.contentType === "image/png")!;
    const kept = await uploadOk("orphan-owner", png.bytes, png.contentType);
    const keptKey = (await mediaRow(kept.id))!.r2_key as string;
    // What a Worker that died between the R2 put and the D1 insert leaves behind.
    const orphan = newR2Key();
    await env.MEDIA.put(orphan, png.bytes);
    // Not a media object: outside the prefix, never touched.
    await env.MEDIA.put("elsewhere/file", png.bytes);

    // Within the grace period an object may be an upload still on its way to D1.
    expect(await sweepOrphanObjects(env, Date.now(), R2_KEY_PREFIX)).toBe(0);
    expect(await env.MEDIA.head(orphan)).not.toBeNull();

    const later = Date.now() + ORPHAN_GRACE_MS + 1000;
    expect(await sweepOrphanObjects(env, later, R2_KEY_PREFIX)).toBeGreaterThanOrEqual(1);
    expect(await env.MEDIA.head(orphan)).toBeNull();
    expect(await env.MEDIA.head(keptKey)).not.toBeNull();
    expect(await env.MEDIA.head("elsewhere/file")).not.toBeNull();
    expect((await api("orphan-owner", kept.url)).status).toBe(200);

    // A window that starts past the orphan wraps around and still finds it.
    const second = newR2Key();
    await env.MEDIA.put(second, png.bytes);
    expect(await sweepOrphanObjects(env, later, `${R2_KEY_PREFIX}ffffffffffffffffffffffffffffffff`)).toBe(1);
    expect(await env.MEDIA.head(second)).toBeNull();
    expect(await env.MEDIA.head(keptKey)).not.toBeNull();
  });
});
