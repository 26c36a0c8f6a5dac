// Shared e2e helpers: a throwaway `wrangler dev` on a loopback port, tokens, and a real WebSocket client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { DEV_JWT_SECRET } from "../../src/dev-secret.ts";
import { prepareLocalDb, startDev } from "../../scripts/lib/wrangler.mjs";

/**
 * Starts a fresh, migrated and seeded `wrangler dev` on `port`; returns { url, wsUrl, output, kill,
 * restart, stop }. `kill()` ends the service (SIGKILL to its process group, like a crash) and keeps its
 * persisted state; `restart()` starts it again on the same port with that state; `stop()` ends it and
 * removes the state.
 */
export async function startServer(port, { vars } = {}) {
  const persistTo = mkdtempSync(path.join(tmpdir(), "edge-chat-e2e-"));
  prepareLocalDb({ persistTo, quiet: true });
  let dev = await startDev({ port, persistTo, vars });
  return {
    url: dev.url,
    wsUrl: dev.url.replace(/^http/, "ws"),
    output: () => dev.output(),
    async kill() {
      try {
        process.kill(-dev.pid, "SIGKILL");
      } catch {}
      await dev.stop();
    },
    async restart() {
      // A killed process group may hold the port a moment longer: wait for it (up to 10 s).
      for (let attempt = 0; ; attempt++) {
        try {
          dev = await startDev({ port, persistTo, vars });
          return;
        } catch (err) {
          if (attempt >= 40 || !String(err.message).includes("already in use")) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async stop() {
      await dev.stop();
      rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

/** An HS256 token signed with the development secret. */
export function token(sub, name = sub) {
  return new SignJWT({ name })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(DEV_JWT_SECRET));
}

/** fetch JSON as `user`. */
export async function api(base, user, path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (user) headers.Authorization = `Bearer ${await token(user)}`;
  if (init.json !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Opens a real WebSocket (Node's built-in client) as `user`, the token in Sec-WebSocket-Protocol.
 * Records every frame, batch frames flattened in order.
 */
export async function connect(wsBase, user, path, { name } = {}) {
  const ws = new WebSocket(`${wsBase}${path}`, ["edge-chat", `bearer.${await token(user, name)}`]);
  const frames = [];
  const waiters = [];
  ws.addEventListener("message", (ev) => {
    const data = JSON.parse(ev.data);
    for (const m of data.type === "batch" ? data.frames : [data]) {
      frames.push(m);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].pred(m)) {
          waiters[i].resolve(m);
          waiters.splice(i, 1);
        }
      }
    }
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`WebSocket to ${path} failed`)), { once: true });
  });
  return {
    ws,
    frames,
    send: (f) => ws.send(typeof f === "string" ? f : JSON.stringify(f)),
    waitFor(pred, timeoutMs = 5000) {
      const found = frames.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timeout waiting for frame; last: ${JSON.stringify(frames.slice(-3))}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    },
    close: () => ws.close(1000, "done"),
  };
}
