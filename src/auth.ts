/**
 * Token verification: HS256 with JWT_SECRET, or RS256/ES256 against an issuer's JWKS (JWT_JWKS_URL).
 * The development secret is accepted only on loopback hosts, so a deployed Worker that still
 * carries it refuses every request instead of trusting tokens anyone can mint.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import type { AuthUser } from "./env";
import { ApiError } from "./errors";
import { USER_ID_RE } from "./ids";
import { cutCodePoints, toWellFormed } from "./unicode";

import { DEV_JWT_SECRET } from "./dev-secret";

/** Longest display name, in code points. */
export const NAME_MAX = 64;

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** True when the request reached us on a loopback host name (wrangler dev, tests). */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return LOOPBACK_HOSTS.has(host) || host.endsWith(".localhost");
}

/**
 * True when tokens are verified with the development secret: no JWKS issuer and no JWT_SECRET of
 * its own (or one equal to the development secret). Such a Worker trusts tokens anyone can mint.
 */
export function usesDevelopmentSecret(env: Env): boolean {
  return !env.JWT_JWKS_URL && (env.JWT_SECRET || DEV_JWT_SECRET) === DEV_JWT_SECRET;
}

type Verifier = (token: string) => Promise<JWTPayload>;

// One JWKS cache per isolate and URL: jose refetches on unknown `kid` and respects its cooldown.
const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function verifierFor(env: Env, requestUrl: string): Verifier {
  if (env.JWT_JWKS_URL) {
    let jwks = jwksCache.get(env.JWT_JWKS_URL);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(env.JWT_JWKS_URL));
      jwksCache.set(env.JWT_JWKS_URL, jwks);
    }
    const set = jwks;
    return async (token) =>
      (
        await jwtVerify(token, set, {
          algorithms: ["RS256", "ES256"],
          issuer: env.JWT_ISSUER || undefined,
          audience: env.JWT_AUDIENCE || undefined,
          requiredClaims: ["sub", "exp"],
        })
      ).payload;
  }
  const secret = env.JWT_SECRET || DEV_JWT_SECRET;
  if (usesDevelopmentSecret(env) && !isLoopback(requestUrl)) {
    throw new ApiError({
      code: "misconfigured",
      message:
        "This Worker still uses the development JWT secret. Set a real one (`wrangler secret put JWT_SECRET`) or configure JWT_JWKS_URL.",
    });
  }
  const key = new TextEncoder().encode(secret);
  return async (token) =>
    (
      await jwtVerify(token, key, {
        algorithms: ["HS256"],
        requiredClaims: ["sub", "exp"],
      })
    ).payload;
}

function unauthorized(message: string): ApiError {
  return new ApiError({
    code: "unauthorized",
    message,
    headers: { "WWW-Authenticate": 'Bearer realm="edge-chat"' },
  });
}

/** The WebSocket subprotocol of this API: echoed in a 101 whenever the client offers it. */
export const APP_PROTOCOL = "edge-chat";
/** Prefix of a `Sec-WebSocket-Protocol` entry that carries the token (browsers cannot set headers). */
const BEARER_PROTOCOL_PREFIX = "bearer.";

/**
 * Finds the token of a request: `Authorization: Bearer`, then a `bearer.<token>` entry of
 * `Sec-WebSocket-Protocol` (browsers cannot set headers on a WebSocket), then `?token=`. Also returns
 * the subprotocol to echo: {@link APP_PROTOCOL} when it is offered, whichever way the token came.
 * A browser (and Node's WebSocket) fails the handshake when it offered protocols and none is echoed,
 * so a client must offer `edge-chat`. A `bearer.` entry is never echoed: the 101 would carry the
 * token back in a header that proxies and logs keep. A client that offers only `bearer.<token>`
 * gets no echo and fails its own handshake (docs/protocol.md).
 */
export function tokenFromRequest(req: Request): { token: string; protocol?: string } | null {
  const offered = (req.headers.get("Sec-WebSocket-Protocol") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  const protocol = offered.includes(APP_PROTOCOL) ? APP_PROTOCOL : undefined;
  const header = req.headers.get("Authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!m) throw unauthorized("Authorization header must be `Bearer <token>`.");
    return { token: m[1], protocol };
  }
  const bearer = offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (bearer) return { token: bearer.slice(BEARER_PROTOCOL_PREFIX.length), protocol };
  const q = new URL(req.url).searchParams.get("token");
  if (q) return { token: q, protocol };
  return null;
}

/**
 * A display name made well-formed at the one place names enter (the token's `name` claim, or `sub`):
 * trimmed, lone surrogates replaced by U+FFFD, cut to {@link NAME_MAX} code points (never inside a
 * character, so never leaving half of a surrogate pair). Everything downstream (header encoding,
 * storage, frames) may then assume well-formed UTF-16. Empty when only whitespace was given.
 */
export function wellFormedName(raw: string): string {
  return cutCodePoints(toWellFormed(raw.trim()), NAME_MAX).trimEnd();
}

/** Verifies the request's token and returns the user; throws ApiError 401 (or 500 when misconfigured). */
export async function authenticate(req: Request, env: Env): Promise<{ user: AuthUser; protocol?: string }> {
  const found = tokenFromRequest(req);
  if (!found) throw unauthorized("Missing bearer token.");
  const verify = verifierFor(env, req.url);
  let payload: JWTPayload;
  try {
    payload = await verify(found.token);
  } catch (err) {
    throw unauthorized(describeJoseError(err));
  }
  const sub = payload.sub;
  if (typeof sub !== "string" || !USER_ID_RE.test(sub)) {
    throw unauthorized("Token `sub` must be 1-128 characters of letters, digits and _.:@|+-.");
  }
  const name = wellFormedName(typeof payload.name === "string" ? payload.name : "") || wellFormedName(sub);
  const user: AuthUser = { id: sub, name };
  if (isAdminClaim(payload, env)) user.admin = true;
  return { user, protocol: found.protocol };
}

/**
 * True when the verified token names a deployment admin: its claim `ADMIN_CLAIM` (default `role`)
 * equals `ADMIN_CLAIM_VALUE` (default `admin`), or is an array containing it. An empty
 * `ADMIN_CLAIM` turns admins off.
 */
export function isAdminClaim(payload: JWTPayload, env: Pick<Env, "ADMIN_CLAIM" | "ADMIN_CLAIM_VALUE">): boolean {
  const claim = env.ADMIN_CLAIM ?? "role";
  if (!claim) return false;
  const want = env.ADMIN_CLAIM_VALUE || "admin";
  const v = payload[claim];
  return v === want || (Array.isArray(v) && v.includes(want));
}

// Specific but safe reasons: never echo the token or key material.
function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "Token has expired.";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "Token algorithm is not allowed.";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "Token signature is invalid.";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `Token claim check failed: ${err.claim} ${err.reason}.`;
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return "Token is malformed.";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "No key in the issuer's JWKS matches the token.";
  if (err instanceof joseErrors.JOSEError) return `Token rejected (${err.code}).`;
  return "Token rejected.";
}
