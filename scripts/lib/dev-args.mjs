// The argument list of `npm run dev`: the script's address defaults, overridden by the user's own.
// Pure (no Node imports) so it is tested on its own (test/e2e/dev-script.e2e.mjs).

/** Options the dev script sets itself; a user's copy replaces the default instead of repeating it. */
const OWNED = new Set(["ip", "port"]);

/**
 * `wrangler dev` arguments for `npm run dev -- <argv>`: `--ip 127.0.0.1 --port $PORT|8787` unless
 * argv names `--ip`/`--port` (as `--port 9000` or `--port=9000`), then the rest of argv unchanged.
 * wrangler refuses a repeated option with a help dump, so defaults and user values never both pass.
 * Throws on an owned option without a value, which wrangler would answer with the same dump.
 * Returns { ip, port, url, args }: `url` is the address to print, with an IPv6 literal in brackets.
 */
export function devArgs(argv, env = {}) {
  const chosen = { ip: "127.0.0.1", port: env.PORT || "8787" };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // After `--` everything belongs to wrangler's positional arguments.
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !OWNED.has(m[1])) {
      rest.push(arg);
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || value === "" || value.startsWith("-")) throw new Error(`--${m[1]} needs a value`);
    chosen[m[1]] = value;
  }
  const host = chosen.ip.includes(":") ? `[${chosen.ip}]` : chosen.ip;
  return { ...chosen, url: `http://${host}:${chosen.port}`, args: ["dev", "--ip", chosen.ip, "--port", chosen.port, ...rest] };
}
