import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import {
  DELIVERY_HEADER,
  hmacHex,
  retryDelaySeconds,
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_SECONDS,
  signatureHeader,
  verifySignature,
} from "../../src/push";
import type { PushJob } from "../../src/push";

const job: PushJob = {
  kind: "dm",
  userId: "bob",
  conversationId: "dm_0123456789abcdef0123456789abcdef",
  messageId: "m-1",
  seq: 3,
  from: "alice",
  fromName: "Alice",
  preview: "hello",
  unread: 2,
  createdAt: 1_700_000_000_000,
};

const config = env as unknown as Record<string, string | undefined>;

function configure(url: string | undefined, secret: string | undefined) {
  config.PUSH_WEBHOOK_URL = url;
  config.PUSH_WEBHOOK_SECRET = secret;
}

async function runBatch(bodies: unknown[], attempts = 1) {
  const batch = createMessageBatch("edge-chat-push", bodies.map((body, i) => ({ id: `q-${i}`, timestamp: Date.now(), attempts, body })));
  // getQueueResult does not report a retry's delay, so the delays are read off the calls.
  const delays: (number | undefined)[] = [];
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    m.retry = (opts?: QueueRetryOptions) => {
      delays.push(opts?.delaySeconds);
      retry(opts);
    };
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  return { ...(await getQueueResult(batch, ctx)), delays };
}

afterEach(() => {
  vi.restoreAllMocks();
  configure("", undefined);
});

describe("push consumer", () => {
  it("posts each job to the webhook with an HMAC-SHA256 signature of the exact body, then acks", async () => {
    configure("https://push.example/hook", "top-secret");
    const seen: Request[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      seen.push(new Request(input, init));
      return new Response("ok");
    });
    const result = await runBatch([job]);
    expect(result.explicitAcks).toEqual(["q-0"]);
    expect(result.retryMessages).toEqual([]);
    expect(seen).toHaveLength(1);
    const req = seen[0];
    expect(req.url).toBe("https://push.example/hook");
    expect(req.method).toBe("POST");
    const body = await req.text();
    expect(JSON.parse(body)).toMatchObject({ ...job, deliveryId: "q-0", attempt: 1 });
    expect(req.headers.get(DELIVERY_HEADER)).toBe("q-0");
    const header = req.headers.get(SIGNATURE_HEADER) ?? "";
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(m, header).not.toBeNull();
    const t = Number(m?.[1]);
    // The HMAC covers "<t>.<body>": the time and the exact body.
    expect(m?.[2]).toBe(await hmacHex("top-secret", `${t}.${body}`));
    expect(await verifySignature("top-secret", header, body)).toEqual({ ok: true, timestamp: t });
    // A different key gives a different signature: the receiver can tell.
    expect(await verifySignature("other", header, body)).toEqual({ ok: false, reason: "mismatch" });
  });

  it("a receiver refuses a changed timestamp, a changed body, a stale delivery and a malformed header", async () => {
    const body = JSON.stringify(job);
    const t = 1_800_000_000;
    const header = await signatureHeader("k", body, t);
    expect(header).toBe(`t=${t},v1=${await hmacHex("k", `${t}.${body}`)}`);
    const at = { nowSeconds: t + 10 };
    expect(await verifySignature("k", header, body, at)).toEqual({ ok: true, timestamp: t });
    // Moving the time (to pass the freshness check with an old capture) breaks the signature.
    const moved = header.replace(`t=${t}`, `t=${t + 3600}`);
    expect(await verifySignature("k", moved, body, { nowSeconds: t + 3600 })).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifySignature("k", header, body.replace("hello", "HELLO"), at)).toEqual({ ok: false, reason: "mismatch" });
    // A capture replayed after the tolerance is refused even though it is intact; inside it, accepted.
    expect(await verifySignature("k", header, body, { nowSeconds: t + SIGNATURE_TOLERANCE_SECONDS + 1 })).toEqual({ ok: false, reason: "stale" });
    expect(await verifySignature("k", header, body, { nowSeconds: t - SIGNATURE_TOLERANCE_SECONDS - 1 })).toEqual({ ok: false, reason: "stale" });
    expect((await verifySignature("k", header, body, { nowSeconds: t + SIGNATURE_TOLERANCE_SECONDS })).ok).toBe(true);
    // The old body-only format, and junk, are malformed.
    for (const bad of [`sha256=${await hmacHex("k", body)}`, "", null, `t=${t}`, `v1=${"0".repeat(64)}`, `t=x,v1=${"0".repeat(64)}`]) {
      expect(await verifySignature("k", bad, body, at)).toEqual({ ok: false, reason: "malformed" });
    }
    // Several v1 entries (a key rotation on the sender's side): any match passes.
    const rotated = `t=${t},v1=${"0".repeat(64)},v1=${await hmacHex("k", `${t}.${body}`)}`;
    expect((await verifySignature("k", rotated, body, at)).ok).toBe(true);
  });

  it("retries server errors, throttling and network failures with growing backoff; drops final refusals", async () => {
    configure("https://push.example/hook", "k");
    const answers = [new Response("down", { status: 503 }), new Response("slow", { status: 429 }), new Response("no", { status: 400 })];
    let call = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => {
      const i = call++;
      if (i === 3) throw new TypeError("connection refused");
      return answers[i];
    });
    // Sequential bodies keep the call order deterministic: one batch per job.
    const first = await runBatch([job], 1);
    expect(first.retryMessages.map((r) => r.msgId)).toEqual(["q-0"]);
    expect(first.delays).toEqual([retryDelaySeconds(1)]);
    const third = await runBatch([job], 3);
    expect(third.retryMessages.map((r) => r.msgId)).toEqual(["q-0"]);
    expect(third.delays).toEqual([retryDelaySeconds(3)]);
    const refused = await runBatch([job], 1);
    expect(refused.explicitAcks).toEqual(["q-0"]);
    expect(refused.retryMessages).toEqual([]);
    const unreachable = await runBatch([job], 2);
    expect(unreachable.retryMessages.map((r) => r.msgId)).toEqual(["q-0"]);
    expect(unreachable.delays).toEqual([retryDelaySeconds(2)]);
    expect(retryDelaySeconds(1)).toBeLessThan(retryDelaySeconds(3));
    expect(retryDelaySeconds(50)).toBe(300);
  });

  it("drops malformed jobs, and everything when no webhook is configured, without calling out", async () => {
    const spy = vi.spyOn(globalThis, "fetch");
    configure("https://push.example/hook", "k");
    const bad = await runBatch([{ kind: "dm", userId: 42 }]);
    expect(bad.explicitAcks).toEqual(["q-0"]);
    configure("", undefined);
    expect((await runBatch([job])).ackAll).toBe(true);
    configure("https://push.example/hook", undefined);
    expect((await runBatch([job])).ackAll).toBe(true);
    expect(spy).not.toHaveBeenCalled();
  });
});
