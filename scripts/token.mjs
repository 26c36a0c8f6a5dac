#!/usr/bin/env node
// Mints a bearer token for local use: `npm run token -- <userId> [name] [--ttl 3600]`.
// Signs with JWT_SECRET from the environment, or the development secret that `npm run dev` accepts.
import { SignJWT } from "jose";
import { DEV_JWT_SECRET } from "../src/dev-secret.ts";

const args = process.argv.slice(2);
let ttl = 30 * 24 * 3600;
const ttlAt = args.indexOf("--ttl");
if (ttlAt >= 0) {
  ttl = Number(args[ttlAt + 1]);
  args.splice(ttlAt, 2);
}
const [sub, name] = args;
if (!sub || !Number.isFinite(ttl) || ttl <= 0) {
  console.error("usage: npm run token -- <userId> [name] [--ttl seconds]");
  process.exit(2);
}
if (!/^[A-Za-z0-9_.:@|+-]{1,128}$/.test(sub)) {
  console.error("userId must be 1-128 characters of letters, digits and _.:@|+-");
  process.exit(2);
}
const secret = new TextEncoder().encode(process.env.JWT_SECRET || DEV_JWT_SECRET);
const token = await new SignJWT({ name: name ?? sub })
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(sub)
  .setIssuedAt()
  .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
  .sign(secret);
process.stdout.write(token + "\n");
