// Builds @edge-chat/client: regenerates src/wire.ts from src/protocol.ts, bundles dist/index.js
// (ESM, unminified: consumers minify) with esbuild, and emits declarations with tsc.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "./gen-wire.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

writeFileSync(path.join(HERE, "src/wire.ts"), generate());
rmSync(path.join(HERE, "dist"), { recursive: true, force: true });
await build({
  entryPoints: [path.join(HERE, "src/index.ts")],
  outfile: path.join(HERE, "dist/index.js"),
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  sourcemap: true,
  logLevel: "warning",
});
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(HERE, "tsconfig.json")], { stdio: "inherit" });
// A consumer's view: the declarations must compile on their own (no zod, no path outside the package).
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(HERE, "check/tsconfig.json")], { stdio: "inherit" });
console.log("client: dist/index.js + dist/*.d.ts (declarations checked from a consumer's side)");
