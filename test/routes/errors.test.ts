import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { api } from "../helpers";

describe("error model", () => {
  it("404 has the one error shape", async () => {
    const res = await api("alice", "/api/nothing-here");
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.message).toMatch(/GET \/api\/nothing-here/);
    expect(body.error.requestId).toBe(res.headers.get("X-Request-Id"));
  });

  it("404 without auth on an unknown non-API path", async () => {
    const res = await api(null, "/nowhere");
    expect(res.status).toBe(404);
  });

  it("an unknown error is a plain 500 without internals", async () => {
    const app = createApp();
    app.get("/boom", () => {
      throw new Error("secret internal detail at /srv/db.ts:42");
    });
    const errors: unknown[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void errors.push(a);
    try {
      const res = await app.fetch(new Request("http://localhost/boom"), env);
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toContain("secret internal detail");
      const body = JSON.parse(text) as { error: { code: string; message: string; requestId: string } };
      expect(body.error).toMatchObject({ code: "internal", message: "Internal error." });
      expect(JSON.stringify(errors)).toContain(body.error.requestId);
    } finally {
      console.error = orig;
    }
  });
});
