/**
 * Offline push: an Inbox enqueues a job on PUSH_QUEUE when a DM reaches a user with no open socket;
 * this consumer posts each job to PUSH_WEBHOOK_URL as JSON, signed with HMAC-SHA256 of the exact body
 * (key PUSH_WEBHOOK_SECRET), and retries failures with exponential backoff.
 */
import { z } from "zod";

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

/** Header carrying `sha256=<hex HMAC-SHA256 of the body>`. */
export const SIGNATURE_HEADER = "X-Push-Signature";
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

/** Hex HMAC-SHA256 of `body` with `secret`. */
export async function signBody(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Statuses worth retrying: the receiver may succeed later. Other 4xx answers are final. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function log(level: "error" | "warn", fields: Record<string, unknown>): void {
  console[level](JSON.stringify({ level, where: "push", ...fields }));
}

/** Queue consumer for PUSH_QUEUE: each message is acked once posted, retried with backoff on failure. */
export async function handlePushBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const url = env.PUSH_WEBHOOK_URL;
  const secret = env.PUSH_WEBHOOK_SECRET;
  if (!url || !secret) {
    // Push is optional: without a webhook (or a key to sign for it) jobs are dropped, loudly.
    if (url && !secret) log("error", { message: "PUSH_WEBHOOK_URL is set but PUSH_WEBHOOK_SECRET is not; pushes dropped" });
    batch.ackAll();
    return;
  }
  await Promise.all(
    batch.messages.map(async (msg) => {
      const parsed = PushJob.safeParse(msg.body);
      if (!parsed.success) {
        log("error", { messageId: msg.id, message: "malformed push job dropped", issue: parsed.error.issues[0]?.message });
        msg.ack();
        return;
      }
      const body = JSON.stringify({ ...parsed.data, deliveryId: msg.id, attempt: msg.attempts });
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            [SIGNATURE_HEADER]: `sha256=${await signBody(secret, body)}`,
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
          log("warn", { messageId: msg.id, status: res.status, attempts: msg.attempts, message: "webhook failed; retrying" });
          msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
        } else {
          log("error", { messageId: msg.id, status: res.status, message: "webhook refused the push; dropped" });
          msg.ack();
        }
      } catch (err) {
        log("warn", { messageId: msg.id, attempts: msg.attempts, error: String(err), message: "webhook unreachable; retrying" });
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
      }
    }),
  );
}
