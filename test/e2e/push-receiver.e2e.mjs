// The push receiver's check of docs/dms.md ("Verifying a delivery"), run as the docs print it (no
// server: dms.e2e.mjs runs the same block on real deliveries). The signature is made here with
// node:crypto, independently of src/push.ts, from the scheme the docs state: t=<unix>,v1=<hex HMAC of "t.body">.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { importDocSnippet } from "./doc-snippet.mjs";

const { verifyPush } = await importDocSnippet("dms.md", "### Verifying a delivery", ["verifyPush"]);

const SECRET = "receiver-secret";
const BODY = JSON.stringify({ kind: "dm", preview: "héllo 😀", seq: 3 });
const T = 1_800_000_000;
const v1 = (t, body = BODY, secret = SECRET) => createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");

test("the documented receiver accepts a fresh delivery, within the tolerance either way", () => {
  const header = `t=${T},v1=${v1(T)}`;
  assert.equal(verifyPush(SECRET, header, BODY, T), true);
  assert.equal(verifyPush(SECRET, header, BODY, T + 300), true);
  assert.equal(verifyPush(SECRET, header, BODY, T - 300), true);
  assert.equal(verifyPush(SECRET, header, Buffer.from(BODY), T), true, "a raw Buffer body");
});

test("the documented receiver refuses replays, moved times, other bodies and other keys", () => {
  const header = `t=${T},v1=${v1(T)}`;
  assert.equal(verifyPush(SECRET, header, BODY, T + 301), false, "replayed after the tolerance");
  assert.equal(verifyPush(SECRET, header, BODY, T - 301), false, "from a clock far ahead");
  assert.equal(verifyPush(SECRET, `t=${T + 3600},v1=${v1(T)}`, BODY, T + 3600), false, "time moved to pass the check");
  assert.equal(verifyPush(SECRET, header, BODY.replace("3", "4"), T), false, "body changed");
  assert.equal(verifyPush("other", header, BODY, T), false, "other key");
});

test("the documented receiver refuses malformed headers without throwing", () => {
  for (const bad of [undefined, null, "", `t=${T}`, `v1=${v1(T)}`, `t=x,v1=${v1(T)}`, `t=${T},v1=${v1(T).toUpperCase()}`, `t=${T},v1=abc`, `sha256=${v1(T)}`, "t,v1", "=,=="]) {
    assert.equal(verifyPush(SECRET, bad, BODY, T), false, String(bad));
  }
});

test("the documented receiver accepts a matching v1 among several, in any position (a sender rotating keys)", () => {
  const good = v1(T);
  const old = v1(T, BODY, "old-secret");
  assert.equal(verifyPush(SECRET, `t=${T},v1=${old},v1=${good}`, BODY, T), true);
  assert.equal(verifyPush(SECRET, `t=${T},v1=${good},v1=${old}`, BODY, T), true);
  assert.equal(verifyPush(SECRET, `t=${T},v1=${old},v1=${old}`, BODY, T), false);
});
