/**
 * client/src/wire.ts is generated from src/protocol.ts (client/gen-wire.mjs). These checks fail
 * `npm run typecheck` when the two drift apart (a protocol change without `npm run build:client`);
 * the runtime test makes the file part of the suite.
 */
import { describe, expect, it } from "vitest";
import type * as P from "../../src/protocol";
import type * as W from "../../client/src/wire.js";
import { PERMANENT_CODES } from "../../client/src/index.js";
import { WsErrorCode } from "../../src/protocol";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const same: [
  Same<W.RoomMessage, P.RoomMessage>,
  Same<W.DmMessage, P.DmMessage>,
  Same<W.ClientFrame, P.ClientMessage>,
  Same<W.ServerFrame, P.ServerFrameMessage>,
  Same<W.WsErrorCode, P.WsErrorCode>,
  Same<W.Status, P.Status>,
] = [true, true, true, true, true, true];

describe("wire types", () => {
  it("match src/protocol.ts, and the permanent refusal codes are server codes", () => {
    expect(same.every(Boolean)).toBe(true);
    for (const code of PERMANENT_CODES) expect(WsErrorCode.options).toContain(code);
    expect(PERMANENT_CODES.has("rate_limited")).toBe(false);
    expect(PERMANENT_CODES.has("internal")).toBe(false);
  });
});
