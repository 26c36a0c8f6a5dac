import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { claimMedia } from "../../src/media/claim";
import type { MediaScope } from "../../src/media/claim";
import { api } from "../helpers";
import { SAMPLES } from "../helpers/media-fixtures";
import { mediaRow, uploadOk } from "../helpers/media";

const png = SAMPLES.find((s) => s.name === "png")!.bytes;
const pdf = SAMPLES.find((s) => s.name === "pdf")!.bytes;
const room = (roomId: string): MediaScope => ({ kind: "room", roomId });
const dm = (conversationId: string, peerId: string): MediaScope => ({ kind: "dm", conversationId, peerId });

describe("claimMedia against D1", () => {
  it("no ids: nothing to do", async () => {
    expect(await claimMedia(env, "c-none", [], room("x"))).toEqual({ ok: true, media: [] });
  });

  it("binds unattached media to a room and returns descriptors in the order given", async () => {
    const a = await uploadOk("c-owner", png);
    const b = await uploadOk("c-owner", pdf);
    const res = await claimMedia(env, "c-owner", [b.id, a.id, b.id], room("general"));
    expect(res).toEqual({
      ok: true,
      media: [
        { id: b.id, url: `/api/chat/media/${b.id}`, contentType: "application/pdf", size: pdf.length },
        { id: a.id, url: `/api/chat/media/${a.id}`, contentType: "image/png", size: png.length },
      ],
    });
    expect(await mediaRow(a.id)).toMatchObject({ bound_kind: "room", bound_id: "general", bound_peer: null });
  });

  it("binds to a DM with the recipient", async () => {
    const a = await uploadOk("c-dm", png);
    expect((await claimMedia(env, "c-dm", [a.id], dm("conv-1", "c-peer"))).ok).toBe(true);
    expect(await mediaRow(a.id)).toMatchObject({ bound_kind: "dm", bound_id: "conv-1", bound_peer: "c-peer" });
  });

  it("a retried send to the same room or conversation succeeds again", async () => {
    const a = await uploadOk("c-retry", png);
    expect((await claimMedia(env, "c-retry", [a.id], room("r"))).ok).toBe(true);
    expect((await claimMedia(env, "c-retry", [a.id], room("r"))).ok).toBe(true);
    const b = await uploadOk("c-retry", png);
    expect((await claimMedia(env, "c-retry", [b.id], dm("conv-r", "p"))).ok).toBe(true);
    expect((await claimMedia(env, "c-retry", [b.id], dm("conv-r", "p"))).ok).toBe(true);
  });

  it("media bound elsewhere is forbidden: another room, or a DM", async () => {
    const a = await uploadOk("c-else", png);
    expect((await claimMedia(env, "c-else", [a.id], room("first"))).ok).toBe(true);
    expect(await claimMedia(env, "c-else", [a.id], room("second"))).toMatchObject({ ok: false, code: "forbidden" });
    expect(await claimMedia(env, "c-else", [a.id], dm("first", "p"))).toMatchObject({ ok: false, code: "forbidden" });
    expect(await mediaRow(a.id)).toMatchObject({ bound_kind: "room", bound_id: "first" });
  });

  it("unknown ids and someone else's media are not_found, with the same message shape", async () => {
    const theirs = await uploadOk("c-victim", png);
    const unknown = await claimMedia(env, "c-thief", ["AAAAAAAAAAAAAAAAAAAAAA"], room("r"));
    const stolen = await claimMedia(env, "c-thief", [theirs.id], room("r"));
    expect(unknown).toMatchObject({ ok: false, code: "not_found" });
    expect(stolen).toMatchObject({ ok: false, code: "not_found", message: `media ${theirs.id} not found` });
    expect(await mediaRow(theirs.id)).toMatchObject({ bound_kind: null });
  });

  it("all or nothing: one bad id binds none of the others", async () => {
    const a = await uploadOk("c-all", png);
    const bound = await uploadOk("c-all", png);
    expect((await claimMedia(env, "c-all", [bound.id], room("elsewhere"))).ok).toBe(true);
    expect((await claimMedia(env, "c-all", [a.id, "AAAAAAAAAAAAAAAAAAAAAA"], room("r"))).ok).toBe(false);
    expect((await claimMedia(env, "c-all", [a.id, bound.id], room("r"))).ok).toBe(false);
    expect(await mediaRow(a.id)).toMatchObject({ bound_kind: null });
  });

  it("two sends racing for the same media: exactly one wins, the other binds nothing", async () => {
    const shared = await uploadOk("c-race", png);
    const own1 = await uploadOk("c-race", png);
    const own2 = await uploadOk("c-race", png);
    const [r1, r2] = await Promise.all([
      claimMedia(env, "c-race", [own1.id, shared.id], room("race-1")),
      claimMedia(env, "c-race", [own2.id, shared.id], room("race-2")),
    ]);
    expect([r1.ok, r2.ok].sort()).toEqual([false, true]);
    const loserOwn = r1.ok ? own2 : own1;
    expect(await mediaRow(loserOwn.id)).toMatchObject({ bound_kind: null });
    expect(await mediaRow(shared.id)).toMatchObject({ bound_kind: "room", bound_id: r1.ok ? "race-1" : "race-2" });
  });

  it("deleted media cannot be claimed; claimed media cannot be deleted", async () => {
    const a = await uploadOk("c-del", png);
    expect((await api("c-del", a.url, { method: "DELETE" })).status).toBe(204);
    expect(await claimMedia(env, "c-del", [a.id], room("r"))).toMatchObject({ ok: false, code: "not_found" });
    const b = await uploadOk("c-del", png);
    expect((await claimMedia(env, "c-del", [b.id], room("r"))).ok).toBe(true);
    expect((await api("c-del", b.url, { method: "DELETE" })).status).toBe(409);
  });
});
