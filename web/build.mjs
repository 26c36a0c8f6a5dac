#!/usr/bin/env node
// Bundles the demo (web/src) into web/public/build/app.js, the one script web/public/index.html loads.
// Run by `npm run dev`, `npm run build` and `npm run test:browser` (`npm run build:web` alone).
// The SDK is bundled from its source (client/src), so the demo needs no separate SDK build step.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const result = await esbuild.build({
  entryPoints: [path.join(here, "src/main.ts")],
  outfile: path.join(here, "public/build/app.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  minify: true,
  sourcemap: "linked",
  alias: { "@edge-chat/client": path.join(here, "../client/src/index.ts") },
  metafile: true,
  logLevel: "warning",
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
console.log(`web: built web/public/build/app.js (${(bytes / 1024).toFixed(1)} kB minified)`);
