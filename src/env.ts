/** Hono environment: bindings from wrangler.toml (types from `wrangler types`) and per-request variables. */

/** The authenticated caller, from the token's claims. */
export interface AuthUser {
  id: string;
  name: string;
  /** The token carries the deployment admin claim (`ADMIN_CLAIM` = `ADMIN_CLAIM_VALUE`). */
  admin?: boolean;
}

export interface AppEnv {
  Bindings: Env;
  Variables: {
    user: AuthUser;
    requestId: string;
    /** The app sub-protocol to echo on a WebSocket upgrade (the client offered it beside `bearer.<token>`). */
    wsProtocol: string;
  };
}

/** Reads a numeric var from wrangler.toml `[vars]`, falling back when it is missing or not a number. */
export function numVar(value: string | undefined, fallback: number): number {
  const n = value === undefined || value === "" ? Number.NaN : Number(value);
  return Number.isFinite(n) ? n : fallback;
}

declare global {
  // Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
  interface Env {
    /** HS256 signing secret; unset means the development secret, accepted on loopback only. */
    JWT_SECRET?: string;
    /** HMAC key for offline push webhooks. */
    PUSH_WEBHOOK_SECRET?: string;
  }
}
