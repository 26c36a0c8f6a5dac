// The systems under test, each started and stopped by the harness on its own loopback ports:
// our service (`wrangler dev`, fresh migrated and seeded state), the bare broadcast Durable Object
// (its own `wrangler dev -c bench/bare/wrangler.toml`), and the socket.io peer in one process or in
// two processes joined by @socket.io/redis-adapter on a private `redis-server`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT, answersHealth, assertPortFree, prepareLocalDb, spawnGroup, wranglerSync } from "../../scripts/lib/wrangler.mjs";
import { token } from "../../test/e2e/lib.mjs";
import { nextFrame, openSocket } from "./clients.mjs";
import { heapUsage } from "./inspector.mjs";
import { PING_FRAME } from "../../src/protocol.ts";

export const PORTS = { ours: 8831, bare: 8832, sio: [8851, 8852], redis: 6390, inspector: { ours: 9241, bare: 9242 } };

/**
 * Rate limits our service runs with during the benchmark: the defaults (20 burst, 10/s per connection)
 * would refuse the offered load, which measures the limiter instead of the service.
 */
export const BENCH_VARS = { RATE_BURST: "100000", RATE_REFILL_PER_SEC: "100000", RATE_ABUSE_LIMIT: "1000000" };

/** Our clients' heartbeat: the ping the runtime answers without waking the object, every 15 s. */
export const KEEPALIVE = { frame: PING_FRAME, everyMs: 15_000 };

const NODE = process.execPath;
// wrangler's shebang runs the first `node` on PATH; make it the Node 22 that runs the harness.
if (!(process.env.PATH ?? "").startsWith(path.dirname(NODE))) process.env.PATH = `${path.dirname(NODE)}${path.delimiter}${process.env.PATH ?? ""}`;
const WRANGLER = path.join(ROOT, "node_modules", ".bin", "wrangler");


/** Where `redis-server` is, or null. */
export function findRedis() {
  const r = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}
export const REDIS_HINT = "redis-server is not installed; on Debian/Ubuntu: sudo apt-get install -y redis-server";

/** Target descriptors: `start()` resolves to a running target with `room(i, roomId)` and `stop()`. */
export const TARGETS = {
  ours: {
    label: "edge-chat (ours)",
    async start() {
      await assertPortFree(PORTS.ours);
      // A snapshot of the code, not `wrangler dev src/index.ts`: wrangler dev reloads on every source
      // change, dropping every socket, and the tree is edited while benchmarks run. So: bundle now
      // (as `npm run build` does), run that bundle with no_bundle, state fresh, migrated and seeded.
      const work = mkdtempSync(path.join(tmpdir(), "edge-chat-bench-"));
      const persistTo = path.join(work, "state");
      prepareLocalDb({ persistTo, quiet: true });
      wranglerSync(["deploy", "--dry-run", "--outdir", path.join(work, "build")], { quiet: true });
      const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8")
        .replace(/^main = .*$/m, 'main = "build/index.js"\nno_bundle = true')
        .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`)
        // Paths in the copied config resolve from its new folder: point the demo's assets back home.
        .replace(/^directory = .*$/m, `directory = ${JSON.stringify(path.join(ROOT, "web", "public"))}`);
      writeFileSync(path.join(work, "wrangler.toml"), toml);
      const port = PORTS.ours;
      const url = `http://127.0.0.1:${port}`;
      const vars = Object.entries(BENCH_VARS).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
      const p = spawnGroup(
        WRANGLER,
        ["dev", "-c", path.join(work, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo, "--show-interactive-dev-session=false", "--inspector-port", String(PORTS.inspector.ours), ...vars],
        { isReady: answersHealth(url) },
      );
      try {
        await p.ready;
      } catch (e) {
        rmSync(work, { recursive: true, force: true });
        throw e;
      }
      const dev = { url, pid: p.pid, output: p.output, stop: async () => {
        await p.stop();
        rmSync(work, { recursive: true, force: true });
      } };
      const ws = dev.url.replace(/^http/, "ws");
      return {
        url: dev.url,
        wsUrl: ws,
        pgids: [dev.pid],
        output: dev.output,
        inspector: `http://127.0.0.1:${PORTS.inspector.ours}`,
        heap: () => heapUsage(`http://127.0.0.1:${PORTS.inspector.ours}`),
        async room(i, roomId) {
          const user = `bench-u${i}`;
          const c = await openSocket(`${ws}/api/chat/rooms/${roomId}/ws`, {
            protocols: ["edge-chat", `bearer.${await token(user)}`],
            keepalive: KEEPALIVE,
          });
          const joined = nextFrame(c, (raw) => raw.includes('"type":"room_state"') || raw.includes('"type":"error"'), 120_000);
          c.send('{"type":"join_room"}');
          const raw = await joined;
          if (!raw.includes('"type":"room_state"')) throw new Error(`join_room failed: ${raw.slice(0, 300)}`);
          return c;
        },
        stop: dev.stop,
      };
    },
  },
  bare: {
    label: "bare Durable Object",
    async start() {
      const port = PORTS.bare;
      await assertPortFree(port);
      const persistTo = mkdtempSync(path.join(tmpdir(), "edge-chat-bench-bare-"));
      const url = `http://127.0.0.1:${port}`;
      const p = spawnGroup(
        WRANGLER,
        ["dev", "-c", "bench/bare/wrangler.toml", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo, "--show-interactive-dev-session=false", "--inspector-port", String(PORTS.inspector.bare)],
        { isReady: answersHealth(url) },
      );
      await p.ready;
      return {
        url,
        pgids: [p.pid],
        output: p.output,
        inspector: `http://127.0.0.1:${PORTS.inspector.bare}`,
        heap: () => heapUsage(`http://127.0.0.1:${PORTS.inspector.bare}`),
        // Joined as ours' sockets are (one frame each way), so "connect and join" compares like with like.
        async room(_i, roomId) {
          const c = await openSocket(`ws://127.0.0.1:${port}/rooms/${roomId}/ws`);
          const joined = nextFrame(c, (raw) => raw.includes('"type":"room_state"'), 120_000);
          c.send('{"type":"join_room"}');
          await joined;
          return c;
        },
        // The user's bare inbox (one object per user, like ours' `/api/chat/ws`), for the presence floor.
        inbox: (user) => openSocket(`ws://127.0.0.1:${port}/inbox/${encodeURIComponent(user)}/ws`),
        async stop() {
          await p.stop();
          rmSync(persistTo, { recursive: true, force: true });
        },
      };
    },
  },
  sio1: {
    label: "socket.io, 1 process",
    start: () => startSocketIo(1),
  },
  sio2: {
    label: "socket.io, 2 processes + Redis",
    needsRedis: true,
    start: () => startSocketIo(2),
  },
};

/** Starts the socket.io peer: `processes` Node processes on `ports` (with Redis between them when more than one). */
export async function startSocketIo(processes, ports = PORTS.sio, redisPort = PORTS.redis) {
  const procs = [];
  const dirs = [];
  try {
    if (processes > 1) {
      const bin = findRedis();
      if (!bin) throw new Error(REDIS_HINT);
      await assertPortFree(redisPort);
      const r = spawnGroup(bin, ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
        isReady: (out) => out.includes("Ready to accept connections"),
      });
      procs.push(r);
      await r.ready;
    }
    for (let k = 0; k < processes; k++) {
      const port = ports[k];
      await assertPortFree(port);
      const dir = mkdtempSync(path.join(tmpdir(), "edge-chat-bench-sio-"));
      dirs.push(dir);
      const args = ["--disable-warning=ExperimentalWarning", "--expose-gc", "bench/peers/socketio-server.mjs", "--port", String(port), "--db", path.join(dir, "chat.sqlite")];
      if (processes > 1) args.push("--redis", String(redisPort));
      const p = spawnGroup(NODE, args, { isReady: (out) => out.includes(`listening ${port}`) });
      procs.push(p);
      await p.ready;
    }
    await selfCheck(ports.slice(0, processes));
  } catch (e) {
    for (const p of procs) await p.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `http://127.0.0.1:${ports[0]}`,
    pgids: procs.map((p) => p.pid),
    output: () => procs.map((p) => p.output()).join("\n"),
    /** Collects garbage in every peer process, so RSS reflects live memory. */
    async gc() {
      await Promise.all(ports.slice(0, processes).map((port) => fetch(`http://127.0.0.1:${port}/gc`).then((r) => r.text())));
      await new Promise((r) => setTimeout(r, 200));
    },
    room: (i, roomId) =>
      openSocket(`ws://127.0.0.1:${ports[i % processes]}/socket.io/?EIO=4&transport=websocket&room=${roomId}&user=bench-u${i}`, {
        sio: true,
      }),
    async stop() {
      for (const p of procs.reverse()) await p.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * Before measuring, one official socket.io-client per process joins a room and sends a frame; every
 * client must get the broadcast (across processes through Redis). So the peer is a working socket.io
 * deployment as its users would connect to it, and the load generator's own framing talks to the same.
 */
async function selfCheck(ports) {
  const { io } = await import("socket.io-client");
  const clients = ports.map((port, k) =>
    io(`http://127.0.0.1:${port}`, { transports: ["websocket"], query: { room: "selfcheck", user: `check${k}` }, reconnection: false }),
  );
  try {
    await Promise.all(clients.map((c) => new Promise((res, rej) => (c.on("connect", res), c.on("connect_error", rej)))));
    const got = clients.map((c) => new Promise((res) => c.on("message", (f) => f?.message?.text === "self-check" && res())));
    clients[0].emit("frame", { type: "send_room_message", clientMsgId: "self-check", text: "self-check" });
    let timer;
    await Promise.race([
      Promise.all(got),
      new Promise((_, rej) => (timer = setTimeout(() => rej(new Error("socket.io peer self-check: broadcast did not reach every process")), 5000))),
    ]);
    clearTimeout(timer);
  } finally {
    for (const c of clients) c.close();
  }
}
