// `npm run dev`: the user's --ip/--port override the script's defaults (issue 11 point 2), PORT still works.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { devArgs } from "../../scripts/lib/dev-args.mjs";
import { answersHealth, assertPortFree, ROOT, spawnGroup } from "../../scripts/lib/wrangler.mjs";

const DEV = path.join(ROOT, "scripts", "dev.mjs");

test("devArgs: defaults, PORT, and the user's --port/--ip in both forms, each passed once", () => {
  assert.deepEqual(devArgs([], {}).args, ["dev", "--ip", "127.0.0.1", "--port", "8787"]);
  assert.deepEqual(devArgs([], { PORT: "9100" }).args, ["dev", "--ip", "127.0.0.1", "--port", "9100"]);
  assert.deepEqual(devArgs(["--port", "9000"], { PORT: "9100" }).args, ["dev", "--ip", "127.0.0.1", "--port", "9000"]);
  assert.deepEqual(devArgs(["--port=9000", "--ip=0.0.0.0", "--var", "A:1"], {}).args, [
    "dev", "--ip", "0.0.0.0", "--port", "9000", "--var", "A:1",
  ]);
  // Options that only start like an owned one are the user's, untouched.
  assert.deepEqual(devArgs(["--inspector-port", "9230", "--ip", "::1"], {}).args, [
    "dev", "--ip", "::1", "--port", "8787", "--inspector-port", "9230",
  ]);
  // The address printed for the user is a URL they can open: an IPv6 literal goes in brackets.
  assert.equal(devArgs([], {}).url, "http://127.0.0.1:8787");
  assert.equal(devArgs(["--ip", "::1", "--port=9000"], {}).url, "http://[::1]:9000");
  assert.equal(devArgs(["--ip=0.0.0.0"], {}).url, "http://0.0.0.0:8787");
  assert.throws(() => devArgs(["--port"], {}), /--port needs a value/);
  assert.throws(() => devArgs(["--port", "--ip", "x"], {}), /--port needs a value/);
});

/**
 * Runs `node scripts/dev.mjs ...args` until `url` answers /health, runs `whileUp`, then stops it (its
 * whole process group). Returns the output.
 */
async function runDev(args, url, env = {}, whileUp = async () => {}) {
  const dev = spawnGroup(process.execPath, [DEV, ...args], { isReady: answersHealth(url), timeoutMs: 90_000, env });
  try {
    await dev.ready;
    await whileUp();
    return dev.output();
  } finally {
    await dev.stop();
  }
}

test("npm run dev -- --port N serves on N (wrangler sees one --port)", async () => {
  await assertPortFree(8861);
  const out = await runDev(["--port", "8861"], "http://127.0.0.1:8861", { PORT: "" });
  assert.match(out, /http:\/\/127\.0\.0\.1:8861/);
});

test("npm run dev -- --port=N --ip=A serves on A:N, and PORT still sets the default", async () => {
  await assertPortFree(8862);
  await runDev(["--port=8862", "--ip=127.0.0.2"], "http://127.0.0.2:8862", {}, async () => {
    assert.equal(await answersHealth("http://127.0.0.1:8862")(), false, "nothing listens on the default ip");
  });
  await assertPortFree(8863);
  await runDev([], "http://127.0.0.1:8863", { PORT: "8863" });
});
