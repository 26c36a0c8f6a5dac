/**
 * The one error logger: a JSON line on `console.error` (Workers Logs and `wrangler tail` index its
 * fields) that keeps the error's stack. Pure (no Cloudflare imports), and it never throws: it runs in
 * catch blocks and in Durable Object handlers, where a second failure would hide the first.
 */

/** Context of a log line: where it happened and the ids that find it again (requestId, userId, …). */
export type LogFields = Record<string, unknown>;

/** `error` (name and message) and `stack` of a thrown value; a non-Error is stringified. */
export function errorFields(err: unknown): { error?: string; stack?: string } {
  if (err === undefined) return {};
  if (err instanceof Error) return { error: `${err.name}: ${err.message}`, stack: err.stack };
  try {
    return { error: typeof err === "string" ? err : JSON.stringify(err) ?? String(err) };
  } catch {
    return { error: Object.prototype.toString.call(err) };
  }
}

/**
 * Logs `msg` at level error with `fields` and, when given, the error with its stack.
 * `err` is undefined for a condition that has no exception (an R2 object missing, say).
 */
export function logError(msg: string, err?: unknown, fields: LogFields = {}): void {
  let line: string;
  try {
    line = JSON.stringify({ level: "error", msg, ...fields, ...errorFields(err) });
  } catch {
    // A field that JSON cannot hold (a BigInt, a cycle): keep the message and the error.
    line = JSON.stringify({ level: "error", msg, ...errorFields(err), unloggableFields: true });
  }
  console.error(line);
}
