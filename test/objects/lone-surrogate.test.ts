/**
 * Message text with a lone surrogate (`"ab\ud800cd"`, which a JSON frame can carry as an escape).
 * The objects' SQLite stores text as UTF-8, which has no lone surrogates: the stored copy would read
 * back as `"ab\ufffdcd"` while the ack and the live frames said `"ab\ud800cd"`. Such text is refused
 * at the protocol's text schema (bad_request, nothing stored), as is a client message id with one (two
 * ids that differ only there would be one stored key); a well-formed pair goes through intact.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../../src/protocol";
import { ackedMessage, inbox, isAck, isError, provision, sendDm, uid } from "../helpers/inbox";
import { createRoom, joined, stubOf } from "../helpers/rooms";
import { api } from "../helpers";

const LONE = "ab\ud800cd";
const PAIR = "ab\ud83d\ude00cd";

describe("lone surrogates in message text", () => {
  it("the objects' SQLite does not keep a lone surrogate (why the schema refuses it)", async () => {
    const room = await createRoom(`surrogate-sql-${crypto.randomUUID().slice(0, 8)}`);
    const back = await runInDurableObject(stubOf(room), (_obj, state) => {
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS probe (t TEXT)");
      state.storage.sql.exec("INSERT INTO probe (t) VALUES (?)", LONE);
      return state.storage.sql.exec<{ t: string }>("SELECT t FROM probe").one().t;
    });
    expect(back).not.toBe(LONE);
  });

  it("send_room_message: refused with bad_request and the frame's id, nothing stored; a pair is kept", async () => {
    const room = await createRoom(`surrogate-${crypto.randomUUID().slice(0, 8)}`);
    const s = await joined(uid("ann"), room);
    s.send({ type: "send_room_message", id: "lone", clientMsgId: "c1", text: LONE });
    const err = await s.waitFor((m: ServerMessage) => (m.type === "error" || m.type === "ack") && m.id === "lone");
    expect(err).toMatchObject({ type: "error", code: "bad_request" });
    expect(err.type === "error" && err.message).toMatch(/^text: /);
    expect((await stubOf(room).history(null, 10)).messages).toEqual([]);

    s.send({ type: "send_room_message", id: "pair", clientMsgId: "c2", text: PAIR });
    const ack = await s.waitFor((m: ServerMessage) => m.type === "ack" && m.id === "pair");
    expect(ack.type === "ack" && ack.message?.text).toBe(PAIR);
    const stored = (await stubOf(room).history(null, 10)).messages;
    expect(stored.map((m) => m.text)).toEqual([PAIR]);

    // Two client ids that differ only in a lone surrogate would be one stored key: the second send
    // would be answered as a duplicate of the first, and its own text lost.
    s.send({ type: "send_room_message", id: "cid", clientMsgId: "x\udc00", text: "one" });
    const cid = await s.waitFor((m: ServerMessage) => (m.type === "error" || m.type === "ack") && m.id === "cid");
    expect(cid).toMatchObject({ type: "error", code: "bad_request" });
    expect(cid.type === "error" && cid.message).toMatch(/^clientMsgId: /);
    expect((await stubOf(room).history(null, 10)).messages).toHaveLength(1);
    s.close();
  });

  it("send_dm: refused with bad_request and the frame's id, nothing stored in either inbox; a pair is kept", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    a.send({ type: "send_dm", id: "lone", to: bob, clientMsgId: "d1", text: LONE });
    const err = await a.waitFor((m: ServerMessage) => isError("lone")(m) || isAck("lone")(m));
    expect(err).toMatchObject({ type: "error", code: "bad_request" });
    const list = await (await api(bob, "/api/chat/dms")).json<{ conversations: unknown[] }>();
    expect(list.conversations).toEqual([]);

    const sent = ackedMessage(await sendDm(a, bob, PAIR));
    expect(sent.text).toBe(PAIR);
    const page = await (await api(bob, `/api/chat/dms/${sent.conversationId}/messages`)).json<{ messages: { text?: string }[] }>();
    expect(page.messages.map((m) => m.text)).toEqual([PAIR]);
    a.close();
    b.close();
  });
});
