import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { claimMedia } from "../../src/media/claim";
import { sweepUnattachedMedia, UNATTACHED_TTL_MS } from "../../src/media/store";
import { SAMPLES } from "./fixtures";
import { mediaRow, stored, uploadOk } from "./helpers";

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
