#!/usr/bin/env node
// `npm run dev`: local D1 migrated and seeded, then `wrangler dev` on 127.0.0.1:8787 (PORT to change).
// Auth uses the development secret unless JWT_SECRET is set in .dev.vars; mint a token with `npm run token`.
import { spawn } from "node:child_process";
import path from "node:path";
import { prepareLocalDb, ROOT } from "./lib/wrangler.mjs";

const port = process.env.PORT ?? "8787";
console.log("Applying D1 migrations and seed rooms to the local database…");
prepareLocalDb();
console.log(`Starting wrangler dev on http://127.0.0.1:${port} (token: npm run token -- alice "Alice")`);
const child = spawn(
  path.join(ROOT, "node_modules", ".bin", "wrangler"),
  ["dev", "--ip", "127.0.0.1", "--port", port, ...process.argv.slice(2)],
  { cwd: ROOT, stdio: "inherit" },
);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
