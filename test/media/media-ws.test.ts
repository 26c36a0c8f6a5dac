/** Media carried by real messages: room and DM sends over WebSockets bind media through claimMedia. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../../src/protocol";
import { api, connectWs } from "../helpers";
import type { TestSocket } from "../helpers";
import { SAMPLES } from "../helpers/media-fixtures";
import { mediaRow, uploadOk } from "../helpers/media";

type Ack = Extract<ServerMessage, { type: "ack" }>;
type ErrorFrame = Extract<ServerMessage, { type: "error" }>;

const png = SAMPLES.find((s) => s.name === "png")!.bytes;
const pdf = SAMPLES.find((s) => s.name === "pdf")!.bytes;
const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`;

async function createRoom(id: string): Promise<string> {
  await env.DB.prepare("INSERT INTO rooms (id, name, category, description, created_by, created_at) VALUES (?, ?, 'general', '', 'test', ?)")
    .bind(id, id, Date.now())
    .run();
  return id;
}

async function joinRoom(user: string, roomId: string): Promise<TestSocket> {
  const s = await connectWs(user, `/api/chat/rooms/${roomId}/ws`);
  s.send({ type: "join_room" });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}

const reply = (id: string) => (m: ServerMessage) => (m.type === "ack" || m.type === "error") && m.id === id;

describe("media in room messages", () => {
  it("a room message with mediaIds carries the descriptors, and another user reads the media", async () => {
    const room = await createRoom(unique("media-room"));
    const [alice, bob] = await Promise.all([joinRoom("m-alice", room), joinRoom("m-bob", room)]);
    const a = await uploadOk("m-alice", png);
    const b = await uploadOk("m-alice", pdf);
    // Before it is posted, bob cannot read it.
    expect((await api("m-bob", a.url)).status).toBe(404);

    alice.send({ type: "send_room_message", id: "s1", clientMsgId: "with-media", text: "look", mediaIds: [a.id, b.id] });
    const ack = await alice.waitFor<Ack>(reply("s1"));
    expect(ack.type).toBe("ack");
    const expected = [
      { id: a.id, url: a.url, contentType: "image/png", size: png.length },
      { id: b.id, url: b.url, contentType: "application/pdf", size: pdf.length },
    ];
    expect(ack.message).toMatchObject({ text: "look", media: expected });
    const seen = await bob.waitFor<Extract<ServerMessage, { type: "message" }>>((m) => m.type === "message" && m.message.clientMsgId === "with-media");
    expect(seen.message.media).toEqual(expected);

    // Bob, and a user who never joined, read it; the PDF comes as an attachment.
    for (const u of ["m-bob", "m-outsider"]) {
      const res = await api(u, a.url);
      expect(res.status, u).toBe(200);
      expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([...png]);
    }
    expect((await api("m-bob", b.url)).headers.get("Content-Disposition")).toMatch(/^attachment;/);
    expect(await mediaRow(a.id)).toMatchObject({ bound_kind: "room", bound_id: room });

    // The history carries the descriptors too.
    const hist = (await (await api("m-outsider", `/api/chat/rooms/${room}/messages`)).json()) as { messages: { media?: unknown }[] };
    expect(hist.messages[0].media).toEqual(expected);

    // Attached now: the owner can no longer delete it.
    expect((await api("m-alice", a.url, { method: "DELETE" })).status).toBe(409);

    // A resend of the send with media gets the first ack; nothing new is stored or broadcast.
    alice.send({ type: "send_room_message", id: "s2", clientMsgId: "with-media", text: "look", mediaIds: [a.id, b.id] });
    const again = await alice.waitFor<Ack>(reply("s2"));
    expect(again).toMatchObject({ type: "ack", duplicate: true, message: { id: ack.message!.id, seq: ack.message!.seq, media: expected } });
    alice.send({ type: "send_room_message", id: "s3", clientMsgId: "after", text: "next" });
    const next = await alice.waitFor<Ack>(reply("s3"));
    expect(next.message!.seq).toBe(ack.message!.seq + 1);
    await bob.waitFor((m) => m.type === "message" && m.message.clientMsgId === "after");
    expect(bob.frames.filter((m) => m.type === "message" && m.message.clientMsgId === "with-media")).toHaveLength(1);
    alice.close();
    bob.close();
  });

  it("someone else's media id, or media posted in another room, is refused and nothing is stored", async () => {
    const room1 = await createRoom(unique("media-r1"));
    const room2 = await createRoom(unique("media-r2"));
    const mallory = await joinRoom("m-mallory", room1);
    const victim = await uploadOk("m-victim", png);
    mallory.send({ type: "send_room_message", id: "x1", clientMsgId: "steal", mediaIds: [victim.id] });
    const err = await mallory.waitFor<ErrorFrame>(reply("x1"));
    expect(err).toMatchObject({ type: "error", code: "not_found" });
    expect(await mediaRow(victim.id)).toMatchObject({ bound_kind: null });

    const own = await uploadOk("m-mallory", png);
    mallory.send({ type: "send_room_message", id: "x2", clientMsgId: "first", mediaIds: [own.id] });
    expect((await mallory.waitFor<Ack>(reply("x2"))).type).toBe("ack");
    const other = await joinRoom("m-mallory", room2);
    other.send({ type: "send_room_message", id: "x3", clientMsgId: "again", mediaIds: [own.id] });
    expect(await other.waitFor<ErrorFrame>(reply("x3"))).toMatchObject({ type: "error", code: "forbidden" });
    const hist = (await (await api("m-mallory", `/api/chat/rooms/${room2}/messages`)).json()) as { messages: unknown[] };
    expect(hist.messages).toEqual([]);
    mallory.close();
    other.close();
  });
});

describe("media in DMs", () => {
  it("the recipient reads media sent in a DM; a third user gets 404", async () => {
    const [sender, recipient, third] = [unique("dm-s"), unique("dm-r"), unique("dm-t")];
    for (const u of [sender, recipient, third]) expect((await api(u, "/api/me")).status).toBe(200);
    const m = await uploadOk(sender, png);
    const sock = await connectWs(sender, "/api/chat/ws");
    sock.send({ type: "send_dm", id: "d1", to: recipient, clientMsgId: "dm-media", mediaIds: [m.id] });
    const ack = await sock.waitFor<Ack>(reply("d1"));
    expect(ack).toMatchObject({ type: "ack", message: { media: [{ id: m.id, url: m.url, contentType: "image/png", size: png.length }] } });
    expect(await mediaRow(m.id)).toMatchObject({ bound_kind: "dm", bound_peer: recipient });
    expect((await api(recipient, m.url)).status).toBe(200);
    expect((await api(third, m.url)).status).toBe(404);
    sock.close();
  });
});
