#!/usr/bin/env node
// `npm run dev`: local D1 migrated and seeded, then `wrangler dev` on 127.0.0.1:8787.
// `npm run dev -- --port 9000` (or `--port=9000`, `--ip 0.0.0.0`) overrides the address, as does
// PORT=9000; other arguments go to `wrangler dev` unchanged.
// Auth uses the development secret unless JWT_SECRET is set in .dev.vars; mint a token with `npm run token`.
import { spawn } from "node:child_process";
import path from "node:path";
import { devArgs } from "./lib/dev-args.mjs";
import { prepareLocalDb, ROOT } from "./lib/wrangler.mjs";

let parsed;
try {
  parsed = devArgs(process.argv.slice(2), process.env);
} catch (err) {
  console.error(`npm run dev: ${err.message}`);
  process.exit(2);
}
console.log("Applying D1 migrations and seed rooms to the local database…");
prepareLocalDb();
console.log(`Starting wrangler dev on ${parsed.url} (token: npm run token -- alice "Alice")`);
const child = spawn(path.join(ROOT, "node_modules", ".bin", "wrangler"), parsed.args, { cwd: ROOT, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
