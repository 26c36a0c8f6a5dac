/**
 * Offline push: an Inbox enqueues a job on PUSH_QUEUE when a DM reaches a user with no open socket;
 * this consumer posts each job to PUSH_WEBHOOK_URL as JSON, signed with HMAC-SHA256 (key
 * PUSH_WEBHOOK_SECRET) over a timestamp and the exact body, and retries failures with exponential backoff.
 *
 * The signature scheme is the one webhook receivers know from Stripe: `t=<unix seconds>,v1=<hex HMAC
 * of "<t>.<body>">`. Signing the time lets a receiver refuse a captured delivery replayed later (it
 * checks `t` against its clock with a tolerance, docs/dms.md); a body-only signature stayed valid forever.
 */
import { z } from "zod";
import { logError } from "./log";

/** A push job as the Inbox enqueues it. */
export const PushJob = z.object({
  kind: z.literal("dm"),
  userId: z.string(),
  conversationId: z.string(),
  messageId: z.string(),
  seq: z.number().int(),
  from: z.string(),
  fromName: z.string(),
  preview: z.string(),
  unread: z.number().int(),
  createdAt: z.number(),
});
export type PushJob = z.infer<typeof PushJob>;

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = "X-Push-Signature";
/** How far a receiver should let `t` be from its clock, in seconds (the default of {@link verifySignature}). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;
/** Header carrying the queue message id: the same across retries, so the receiver can drop repeats. */
export const DELIVERY_HEADER = "X-Push-Delivery";
/** Longest backoff between two attempts. */
const MAX_BACKOFF_SECONDS = 300;
/** How long one webhook call may take before it counts as failed. */
const WEBHOOK_TIMEOUT_MS = 10_000;

/** Backoff before the next attempt, after `attempts` attempts (1-based): 2, 4, 8 … seconds, capped. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(MAX_BACKOFF_SECONDS, 2 ** Math.max(1, attempts));
}

/** Hex HMAC-SHA256 of `message` with `secret`. */
export async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The {@link SIGNATURE_HEADER} value for `body` sent at `timestamp` (unix seconds): `t=…,v1=…`. */
export async function signatureHeader(secret: string, body: string, timestamp: number): Promise<string> {
  const t = Math.floor(timestamp);
  return `t=${t},v1=${await hmacHex(secret, `${t}.${body}`)}`;
}

/** Why {@link verifySignature} refused a delivery. */
export type SignatureFailure = "malformed" | "stale" | "mismatch";

/**
 * The receiver's check, as docs/dms.md describes it (and as a receiver in TypeScript may use it):
 * the header parses, `t` is within `toleranceSeconds` of `nowSeconds`, and one `v1` equals the HMAC
 * of `"<t>.<body>"` (compared in constant time). `body` must be the exact bytes received, as text.
 */
export async function verifySignature(
  secret: string,
  header: string | null,
  body: string,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): Promise<{ ok: true; timestamp: number } | { ok: false; reason: SignatureFailure }> {
  const parts = (header ?? "").split(",").map((p) => p.trim().split("="));
  const t = parts.find(([k]) => k === "t")?.[1];
  const candidates = parts.filter(([k, v]) => k === "v1" && v !== undefined && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => v);
  if (t === undefined || !/^\d{1,12}$/.test(t) || candidates.length === 0) return { ok: false, reason: "malformed" };
  const timestamp = Number(t);
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) return { ok: false, reason: "stale" };
  const expected = await hmacHex(secret, `${t}.${body}`);
  return candidates.some((c) => constantTimeEqual(c, expected)) ? { ok: true, timestamp } : { ok: false, reason: "mismatch" };
}

/** String equality whose time does not depend on where the strings differ (equal lengths assumed public). */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Statuses worth retrying: the receiver may succeed later. Other 4xx answers are final. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A retryable failure: a warning, not an error (the queue will try again). */
function warn(fields: Record<string, unknown>): void {
  console.warn(JSON.stringify({ level: "warn", where: "push", ...fields }));
}

/** Queue consumer for PUSH_QUEUE: each message is acked once posted, retried with backoff on failure. */
export async function handlePushBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const url = env.PUSH_WEBHOOK_URL;
  const secret = env.PUSH_WEBHOOK_SECRET;
  if (!url || !secret) {
    // Push is optional: without a webhook (or a key to sign for it) jobs are dropped, loudly.
    if (url && !secret) logError("push: PUSH_WEBHOOK_URL is set but PUSH_WEBHOOK_SECRET is not; pushes dropped");
    batch.ackAll();
    return;
  }
  await Promise.all(
    batch.messages.map(async (msg) => {
      const parsed = PushJob.safeParse(msg.body);
      if (!parsed.success) {
        logError("push: malformed push job dropped", undefined, { messageId: msg.id, issue: parsed.error.issues[0]?.message });
        msg.ack();
        return;
      }
      const body = JSON.stringify({ ...parsed.data, deliveryId: msg.id, attempt: msg.attempts });
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            // Signed at each attempt: a retry carries a fresh time, within any receiver's tolerance.
            [SIGNATURE_HEADER]: await signatureHeader(secret, body, Date.now() / 1000),
            [DELIVERY_HEADER]: msg.id,
          },
          body,
          signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
        });
        // Drain the body so the connection is released.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          msg.ack();
        } else if (retryable(res.status)) {
          warn({ messageId: msg.id, status: res.status, attempts: msg.attempts, message: "webhook failed; retrying" });
          msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
        } else {
          logError("push: webhook refused the push; dropped", undefined, { messageId: msg.id, status: res.status });
          msg.ack();
        }
      } catch (err) {
        warn({ messageId: msg.id, attempts: msg.attempts, error: String(err), message: "webhook unreachable; retrying" });
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
      }
    }),
  );
}
