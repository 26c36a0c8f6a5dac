import { describe, expect, it } from "vitest";
import { conversationIdFor } from "../../src/objects/conversation";
import { CONVERSATION_CURSOR_RE, CONVERSATION_ID_RE, ConversationId, USER_ID_RE, UserId } from "../../src/ids";
import { ClientMessage } from "../../src/protocol";

describe("ids", () => {
  it("UserId accepts token subs and refuses whitespace, empty and over-long ids", () => {
    for (const ok of ["alice", "auth0|abc123", "user@example.com", "a:b.c_d+e-f", "x".repeat(128)]) {
      expect(UserId.safeParse(ok).success, ok).toBe(true);
      expect(USER_ID_RE.test(ok)).toBe(true);
    }
    for (const bad of ["", "a b", "a\nb", "x".repeat(129), "é", "a/b"]) {
      const r = UserId.safeParse(bad);
      expect(r.success, JSON.stringify(bad)).toBe(false);
      if (!r.success) expect(r.error.issues[0].message).toBe("must be a user id");
    }
  });

  it("the protocol's frames use the same UserId", () => {
    expect(ClientMessage.safeParse({ type: "send_dm", to: "a b", clientMsgId: "c", text: "hi" }).success).toBe(false);
    expect(ClientMessage.safeParse({ type: "send_dm", to: "auth0|x", clientMsgId: "c", text: "hi" }).success).toBe(true);
  });

  it("the conversation id pattern matches what conversationIdFor makes, and the cursor embeds it", async () => {
    const id = await conversationIdFor("alice", "bob");
    expect(id).toMatch(CONVERSATION_ID_RE);
    expect(ConversationId.safeParse(id).success).toBe(true);
    expect(ConversationId.safeParse("dm_not-a-real-one").success).toBe(false);
    expect(CONVERSATION_CURSOR_RE.exec(`1700000000000.${id}`)?.slice(1)).toEqual(["1700000000000", id]);
    expect(CONVERSATION_CURSOR_RE.test(`x.${id}`)).toBe(false);
    expect(CONVERSATION_CURSOR_RE.test(`1.${id}0`)).toBe(false);
  });
});
