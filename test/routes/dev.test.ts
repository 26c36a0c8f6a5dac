import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { BASE } from "../helpers";

type ErrorBody = { error: { code: string; message: string; requestId: string } };

function mint(body: unknown, { url = `${BASE}/api/dev/token`, headers = {} }: { url?: string; headers?: Record<string, string> } = {}) {
  return SELF.fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The route answers exactly like one that does not exist. */
async function expectAbsent(res: Response) {
  expect(res.status).toBe(404);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe("not_found");
  expect(body.error.message).toBe("No route for POST /api/dev/token.");
  expect(body.error.requestId).toBeTruthy();
}

async function expect400(res: Response, messagePart: RegExp) {
  expect(res.status).toBe(400);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe("bad_request");
  expect(body.error.message).toMatch(messagePart);
  expect(body.error.requestId).toBeTruthy();
}

describe("POST /api/dev/token: refused outside development", () => {
  it("does not exist when JWT_SECRET is set", async () => {
    const app = createApp();
    const req = new Request(`${BASE}/api/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: "alice" }),
    });
    await expectAbsent(await app.fetch(req, { ...env, JWT_SECRET: "a-real-secret-of-sufficient-length-0123456789" }));
  });

  it("does not exist when a JWKS issuer is configured", async () => {
    const app = createApp();
    const req = new Request(`${BASE}/api/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: "alice" }),
    });
    await expectAbsent(await app.fetch(req, { ...env, JWT_JWKS_URL: "https://issuer.test/.well-known/jwks.json" }));
  });

  it("does not exist on a non-loopback host, even with the development secret", async () => {
    await expectAbsent(await mint({ userId: "alice" }, { url: "https://chat.example.com/api/dev/token" }));
    await expectAbsent(await mint({ userId: "alice" }, { url: "http://10.0.0.5:8787/api/dev/token" }));
  });

  it("does not exist for a page of another origin (the API answers CORS for any origin)", async () => {
    await expectAbsent(await mint({ userId: "alice" }, { headers: { Origin: "https://evil.example" } }));
    await expectAbsent(await mint({ userId: "alice" }, { headers: { Origin: "null" } }));
  });

  it("is refused before its body is read: bad input elsewhere is still 404, not 400", async () => {
    await expectAbsent(await mint("{not json", { url: "https://chat.example.com/api/dev/token" }));
  });

  it("is not in the OpenAPI document", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).some((p) => p.startsWith("/api/dev"))).toBe(false);
  });
});

describe("POST /api/dev/token: bad input", () => {
  it("needs a userId", async () => {
    await expect400(await mint({ name: "Alice" }), /userId/);
  });

  it("refuses a userId that is not a user id", async () => {
    await expect400(await mint({ userId: "has space" }), /userId: must be 1-128 characters/);
    await expect400(await mint({ userId: "x".repeat(129) }), /userId/);
  });

  it("refuses an empty or overlong name", async () => {
    await expect400(await mint({ userId: "alice", name: "   " }), /name: must not be empty/);
    await expect400(await mint({ userId: "alice", name: "n".repeat(65) }), /name: is longer than 64/);
  });

  it("refuses a body that is not JSON", async () => {
    await expect400(await mint("{not json"), /JSON/);
  });
});

describe("POST /api/dev/token: on a loopback host with the development secret", () => {
  it("mints a token the API accepts, for that user and name", async () => {
    for (const host of ["http://localhost", "http://127.0.0.1:8787", "http://[::1]:8787"]) {
      const res = await mint({ userId: "dev-alice", name: " Alice " }, { url: `${host}/api/dev/token`, headers: { Origin: host } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { token: string; userId: string; name: string; expiresAt: number };
      expect(body).toMatchObject({ userId: "dev-alice", name: "Alice" });
      expect(body.expiresAt).toBeGreaterThan(Date.now() / 1000);
      const me = await SELF.fetch(`${BASE}/api/me`, { headers: { Authorization: `Bearer ${body.token}` } });
      expect(await me.json()).toEqual({ id: "dev-alice", name: "Alice" });
    }
  });

  it("names the user by their id when no name is given", async () => {
    const body = (await (await mint({ userId: "dev-bob" })).json()) as { name: string };
    expect(body.name).toBe("dev-bob");
  });
});
