import { env, SELF } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { api, BASE, tokenFor } from "../helpers";

async function withToken(token: string, url = `${BASE}/api/chat/rooms`) {
  return SELF.fetch(url, { headers: { Authorization: `Bearer ${token}` } });
}

async function expect401(res: Response, messagePart: RegExp) {
  expect(res.status).toBe(401);
  const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
  expect(body.error.code).toBe("unauthorized");
  expect(body.error.message).toMatch(messagePart);
  expect(body.error.requestId).toBeTruthy();
}

describe("auth", () => {
  it("rejects a missing token", async () => {
    await expect401(await api(null, "/api/chat/rooms"), /missing/i);
  });

  it("rejects a malformed Authorization header", async () => {
    const res = await SELF.fetch(`${BASE}/api/chat/rooms`, { headers: { Authorization: "Basic abc" } });
    await expect401(res, /Bearer/);
  });

  it("rejects a malformed token", async () => {
    await expect401(await withToken("not.a.jwt"), /malformed/i);
  });

  it("rejects a forged token (wrong secret)", async () => {
    await expect401(await withToken(await tokenFor("mallory", { secret: "some-other-secret-of-sufficient-length" })), /signature/i);
  });

  it("rejects an expired token", async () => {
    await expect401(await withToken(await tokenFor("alice", { expiresIn: -60 })), /expired/i);
  });

  it("rejects a token signed with another algorithm", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const token = await new SignJWT({ name: "Eve" })
      .setProtectedHeader({ alg: "ES256" })
      .setSubject("eve")
      .setExpirationTime("1h")
      .sign(privateKey);
    await expect401(await withToken(token), /algorithm/i);
  });

  it("rejects alg=none", async () => {
    const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const token = `${enc({ alg: "none", typ: "JWT" })}.${enc({ sub: "eve", exp: Math.floor(Date.now() / 1000) + 60 })}.`;
    const res = await withToken(token);
    expect(res.status).toBe(401);
  });

  it("rejects a token without exp", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .sign(new TextEncoder().encode("edge-chat-development-secret-do-not-deploy"));
    await expect401(await withToken(token), /exp/);
  });

  it("rejects a token whose sub is not a valid user id", async () => {
    await expect401(await withToken(await tokenFor("has space")), /sub/);
  });

  it("accepts a valid token and provisions the user in D1", async () => {
    const res = await withToken(await tokenFor("provisioned-user", { name: "Pro Visioned" }), `${BASE}/api/does-not-exist`);
    expect(res.status).toBe(404); // authenticated, then no such route
    const row = await env.DB.prepare("SELECT id, name FROM users WHERE id = ?").bind("provisioned-user").first();
    expect(row).toEqual({ id: "provisioned-user", name: "Pro Visioned" });
  });

  it("refuses the development secret on a non-loopback host", async () => {
    const res = await withToken(await tokenFor("alice"), "https://chat.example.com/api/chat/rooms");
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("misconfigured");
    expect(body.error.message).toMatch(/JWT_SECRET/);
  });

  it("verifies RS256 tokens against the issuer's JWKS", async () => {
    const { privateKey, publicKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    // The JWKS is served by a worker of our own: the verifier's fetch is real, not mocked.
    const { createApp } = await import("../../src/app");
    const app = createApp();
    const jwksUrl = "https://issuer.test/.well-known/jwks.json";
    const origFetch = globalThis.fetch;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url === jwksUrl) return Response.json({ keys: [jwk] });
      return origFetch(input, init);
    }) as typeof fetch;
    try {
      const testEnv = { ...env, JWT_JWKS_URL: jwksUrl };
      const good = await new SignJWT({ name: "Iss User" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setSubject("iss-user")
        .setExpirationTime("1h")
        .sign(privateKey);
      const ok = await app.fetch(new Request("https://chat.example.com/api/nope", { headers: { Authorization: `Bearer ${good}` } }), testEnv);
      expect(ok.status).toBe(404);
      const hs = await tokenFor("iss-user");
      const bad = await app.fetch(new Request("https://chat.example.com/api/nope", { headers: { Authorization: `Bearer ${hs}` } }), testEnv);
      expect(bad.status).toBe(401);
    } finally {
      globalThis.fetch = origFetch;
    }
  });

  it("never logs the token", async () => {
    const seen: string[] = [];
    const orig = { log: console.log, error: console.error, warn: console.warn };
    for (const k of ["log", "error", "warn"] as const) console[k] = (...a: unknown[]) => void seen.push(a.map(String).join(" "));
    try {
      const token = await tokenFor("alice", { expiresIn: -60 });
      await withToken(token);
      expect(seen.join("\n")).not.toContain(token.split(".")[2]);
    } finally {
      Object.assign(console, orig);
    }
  });
});
