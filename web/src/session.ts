/**
 * Who is signed in, kept in localStorage, and the token provider the SDK calls on every connect:
 * tokens come from the development token route (`POST /api/dev/token`), which exists only on a
 * loopback host while the server uses its development secret.
 */

export interface Session {
  userId: string;
  name: string;
}

const KEY = "edge-chat.session";

/** The stored session, if any. */
export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? "null") as Session | null;
    return s && typeof s.userId === "string" && typeof s.name === "string" ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session): void {
  localStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
}

/** Thrown when the server has no development token route (a deployment with a real secret). */
export class NoDevTokens extends Error {}

/**
 * A token provider for `session`: asks the server for a token and reuses it until a minute before it
 * expires. Tokens are never written to storage.
 */
export function tokenProvider(session: Session, baseUrl = location.origin): () => Promise<string> {
  let cached: { token: string; expiresAt: number } | null = null;
  return async () => {
    if (cached && cached.expiresAt * 1000 - Date.now() > 60_000) return cached.token;
    const res = await fetch(`${baseUrl}/api/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: session.userId, name: session.name }),
    });
    if (res.status === 404) throw new NoDevTokens("This server does not hand out development tokens (it has a real JWT secret, or is not on a loopback address).");
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new Error(body?.error?.message ?? `token request failed (${res.status})`);
    }
    cached = (await res.json()) as { token: string; expiresAt: number };
    return cached.token;
  };
}
