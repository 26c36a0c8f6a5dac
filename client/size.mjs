// Measures what each client library adds to a browser bundle: an entry that imports it is bundled
// by esbuild (browser platform, ESM, minified, tree-shaken), then gzipped (level 9).
// Run with `npm run size` (after `npm run build:client`); prints a Markdown table. `--check` also fails
// (exit 1) when the SDK's ChatClient bundle is over its budget, BUDGET_GZ_BYTES minified and gzipped.
import { build } from "esbuild";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const version = (pkg) => JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;

const BUDGET_GZ_BYTES = 10_000;

const targets = [
  { name: "@edge-chat/client (ChatClient)", code: 'import { ChatClient } from "@edge-chat/client"; globalThis.x = ChatClient;' },
  {
    name: "@edge-chat/client (everything exported)",
    code: 'import * as sdk from "@edge-chat/client"; globalThis.x = sdk;',
  },
  { name: `partysocket ${version("partysocket")} (ReconnectingWebSocket)`, code: 'import { WebSocket } from "partysocket"; globalThis.x = WebSocket;' },
  { name: `socket.io-client ${version("socket.io-client")} (io)`, code: 'import { io } from "socket.io-client"; globalThis.x = io;' },
];

if (!existsSync(path.join(ROOT, "client/dist/index.js"))) {
  console.error("client/dist/index.js is missing: run `npm run build:client` first");
  process.exit(1);
}

/** Bundles `code` (minified) and returns { min, gz } in bytes. */
export async function measure(code) {
  const out = await build({
    stdin: { contents: code, resolveDir: ROOT, loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    legalComments: "none",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
  const bytes = out.outputFiles[0].contents;
  return { min: bytes.byteLength, gz: gzipSync(bytes, { level: 9 }).byteLength };
}

const kB = (n) => `${(n / 1000).toFixed(1)} kB`;
console.log("| library | minified | minified + gzip |");
console.log("| --- | ---: | ---: |");
const sizes = [];
for (const t of targets) {
  const { min, gz } = await measure(t.code);
  sizes.push(gz);
  console.log(`| ${t.name} | ${kB(min)} | ${kB(gz)} |`);
}
if (process.argv.includes("--check")) {
  if (sizes[0] > BUDGET_GZ_BYTES) {
    console.error(`@edge-chat/client is ${kB(sizes[0])} minified + gzipped: over its ${kB(BUDGET_GZ_BYTES)} budget`);
    process.exit(1);
  }
  console.log(`@edge-chat/client: ${kB(sizes[0])} of its ${kB(BUDGET_GZ_BYTES)} budget`);
}
