import { describe, expect, it } from "vitest";
import { CONVERSATION_ID_RE, conversationIdFor, nextReadSeq, PREVIEW_MAX, previewOf } from "../../src/objects/conversation";

describe("conversationIdFor", () => {
  it("is the same for both orders of the pair and differs between pairs", async () => {
    const ab = await conversationIdFor("alice", "bob");
    expect(ab).toMatch(CONVERSATION_ID_RE);
    expect(await conversationIdFor("bob", "alice")).toBe(ab);
    expect(await conversationIdFor("alice", "carol")).not.toBe(ab);
    // The separator keeps ("a", "bc") and ("ab", "c") apart.
    expect(await conversationIdFor("a", "bc")).not.toBe(await conversationIdFor("ab", "c"));
  });

  it("is stable: the id is sha-256 over the sorted pair, truncated", async () => {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("alice\nbob"));
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(await conversationIdFor("bob", "alice")).toBe(`dm_${hex.slice(0, 32)}`);
  });
});

describe("previewOf", () => {
  it("collapses whitespace, cuts long text and describes media", () => {
    expect(previewOf("  hello \n\n world ", 0)).toBe("hello world");
    const long = previewOf("x".repeat(500), 0);
    expect(long).toHaveLength(PREVIEW_MAX);
    expect(long.endsWith("…")).toBe(true);
    expect(previewOf(undefined, 1)).toBe("[1 attachment]");
    expect(previewOf("   ", 3)).toBe("[3 attachments]");
    expect(previewOf(undefined, 0)).toBe("");
  });
});

describe("nextReadSeq", () => {
  it("moves forward only, clamped to the last message", () => {
    expect(nextReadSeq(0, 3, 5)).toBe(3);
    expect(nextReadSeq(3, 9, 5)).toBe(5);
    expect(nextReadSeq(3, 2, 5)).toBeNull();
    expect(nextReadSeq(5, 5, 5)).toBeNull();
    expect(nextReadSeq(0, 1, 0)).toBeNull();
  });
});
