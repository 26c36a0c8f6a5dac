/**
 * The WebSocket protocol, both directions, as zod discriminated unions on `type`.
 * Imported by the Durable Objects, the tests, the e2e client and the bench client.
 * No Cloudflare imports: this file is pure.
 */
import { z } from "zod";
// With its extension: Node runs this file directly (bench peers, e2e), and its resolver needs one.
import { UserId } from "./ids.ts";
import { isWellFormed } from "./unicode.ts";

/** Longest message text, in characters. */
export const TEXT_MAX = 4000;
/** Largest client frame, in bytes (UTF-8). */
export const FRAME_MAX_BYTES = 16 * 1024;
/** Most media attachments per message. */
export const MEDIA_PER_MESSAGE_MAX = 10;
/** Most messages in `room_state.messages` and one history page. */
export const PAGE_MAX = 100;
/**
 * Most user ids per `subscribe_presence` / `unsubscribe_presence` frame: D1 binds at most 100
 * parameters per query, and each id costs an RPC. The subscription total is a separate, larger limit.
 */
export const PRESENCE_IDS_PER_FRAME_MAX = 100;
/** Most conversations in one `sync` frame's `since`. */
export const SYNC_CONVERSATIONS_MAX = 100;
/** Most user ids a message may mention. */
export const MENTIONS_MAX = 20;
/** Most distinct emoji on one message (a reaction with a new emoji beyond it is refused). */
export const REACTIONS_DISTINCT_MAX = 20;

/** Close codes the server uses; never the reserved 1005, 1006, 1015. */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

/** The exact frame the runtime answers with `PONG_FRAME` without waking a hibernated object. */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** Error codes of `error` frames. */
export const WsErrorCode = z.enum([
  "bad_request",
  "too_large",
  "forbidden",
  "blocked",
  "not_found",
  "rate_limited",
  "internal",
  // Moderation (shared/DESIGN.md "Moderation and private rooms").
  "banned",
  "muted",
  "slow_mode",
  "frozen",
  "filtered",
]);
export type WsErrorCode = z.infer<typeof WsErrorCode>;

/**
 * Stored strings are UTF-8 in the objects' SQLite, which turns a lone surrogate (a JSON `"\ud800"`
 * escape) into U+FFFD: the stored copy would differ from what the ack and the live frames said, and
 * two client ids differing only there would be one key. Refused where they enter.
 */
const LONE_SURROGATE = "must not contain a lone surrogate (an unpaired \\uD800-\\uDFFF escape)";
const ClientMsgId = z.string().min(1).max(64).refine(isWellFormed, LONE_SURROGATE);
const RequestId = z.union([z.string().max(64), z.number().int()]).optional();
const Text = z.string().max(TEXT_MAX, `text is longer than ${TEXT_MAX} characters`).refine(isWellFormed, LONE_SURROGATE);
const MediaIds = z.array(z.string().min(1).max(64)).max(MEDIA_PER_MESSAGE_MAX);
const Seq = z.number().int().nonnegative();
const MessageId = z.string().min(1).max(64);
/** Optional on a send: whom the message mentions (user ids). */
const Mentions = z.array(UserId).max(MENTIONS_MAX, `at most ${MENTIONS_MAX} mentions`);
/** One RGI emoji sequence (fully qualified: "❤️", not "❤"), skin tones and ZWJ sequences included. */
const ONE_EMOJI = new RegExp("^\\p{RGI_Emoji}$", "v");
export const Emoji = z.string().max(32).refine((s) => ONE_EMOJI.test(s), "emoji must be exactly one emoji");
/** On the inbox socket a lifecycle frame names its conversation; on a room socket it has none. */
const ConversationRef = z.string().min(1).max(128).optional();

/** A user's status as others see it. `invisible` is shown to others as `offline`. */
export const Status = z.enum(["online", "away", "dnd", "offline"]);
export type Status = z.infer<typeof Status>;
export const SettableStatus = z.enum(["online", "away", "dnd", "invisible"]);

/** Media as carried on a stored message. */
export const MediaDescriptor = z.object({
  id: z.string(),
  url: z.string(),
  contentType: z.string(),
  size: z.number().int(),
});
export type MediaDescriptor = z.infer<typeof MediaDescriptor>;

/** What the message lifecycle keeps on a stored message, room or DM (shared/DESIGN.md "Message lifecycle"). */
const LIFECYCLE_FIELDS = {
  /** Set once the text was edited (ms since epoch); the text is the latest. */
  editedAt: z.number().optional(),
  /** A tombstone: the message was deleted; it keeps its `seq`, its text and media are gone. */
  deleted: z.literal(true).optional(),
  deletedBy: z.string().optional(),
  /** Reaction counts by emoji; absent when there are none. */
  reactions: z.record(z.string(), z.number().int()).optional(),
  /** The emoji the reader reacted with (only on copies made for one reader: history, replay, acks). */
  myReactions: z.array(z.string()).optional(),
  /** Whom the message mentions (user ids). */
  mentions: z.array(z.string()).optional(),
  /** Position in the owner's change order (see docs/protocol.md "Resume covers changes"). */
  rev: z.number().int().optional(),
};

/** A stored room message. */
export const RoomMessage = z.object({
  id: z.string(),
  roomId: z.string(),
  seq: z.number().int(),
  userId: z.string(),
  userName: z.string(),
  clientMsgId: z.string(),
  text: z.string().optional(),
  media: z.array(MediaDescriptor).optional(),
  replyTo: z.string().optional(),
  /** On thread parents: how many messages reply to this one. */
  replyCount: z.number().int().optional(),
  ...LIFECYCLE_FIELDS,
  createdAt: z.number(),
});
export type RoomMessage = z.infer<typeof RoomMessage>;

/** A stored DM, as one participant's inbox numbers it. */
export const DmMessage = z.object({
  id: z.string(),
  conversationId: z.string(),
  seq: z.number().int(),
  from: z.string(),
  to: z.string(),
  clientMsgId: z.string(),
  text: z.string().optional(),
  media: z.array(MediaDescriptor).optional(),
  ...LIFECYCLE_FIELDS,
  createdAt: z.number(),
});
export type DmMessage = z.infer<typeof DmMessage>;

const hasBody = (m: { text?: string; mediaIds?: string[] }) =>
  (m.text !== undefined && m.text.trim().length > 0) || (m.mediaIds !== undefined && m.mediaIds.length > 0);
const BODY_REQUIRED = { message: "text or mediaIds is required", path: ["text"] };

// ---------------------------------------------------------------- client → server

export const ClientMessage = z.discriminatedUnion("type", [
  /**
   * `since`: replay messages after that seq, then live. `sinceRev`: also send, as
   * `message_updated` / `message_deleted` frames, every change to messages at or before `since`
   * made after that rev (docs/protocol.md "Resume covers changes").
   */
  z.object({ type: z.literal("join_room"), id: RequestId, since: Seq.optional(), sinceRev: Seq.optional() }),
  z.object({ type: z.literal("leave_room"), id: RequestId }),
  z
    .object({
      type: z.literal("send_room_message"),
      id: RequestId,
      clientMsgId: ClientMsgId,
      text: Text.optional(),
      mediaIds: MediaIds.optional(),
      replyTo: z.string().min(1).max(64).optional(),
      mentions: Mentions.optional(),
    })
    .refine(hasBody, BODY_REQUIRED),
  z
    .object({
      type: z.literal("send_dm"),
      id: RequestId,
      to: UserId,
      clientMsgId: ClientMsgId,
      text: Text.optional(),
      mediaIds: MediaIds.optional(),
    })
    .refine(hasBody, BODY_REQUIRED),
  z.object({ type: z.literal("typing"), id: RequestId, on: z.boolean(), conversationId: z.string().max(128).optional() }),
  /** Room socket: the caller's read position in the room. Inbox socket: `conversationId` is required. */
  z.object({ type: z.literal("mark_read"), id: RequestId, conversationId: ConversationRef, seq: Seq }),
  /** The author replaces the text (rooms and DMs). */
  z.object({ type: z.literal("edit_message"), id: RequestId, conversationId: ConversationRef, messageId: MessageId, text: Text.refine((t) => t.trim().length > 0, "text must not be empty"), mentions: Mentions.optional() }),
  /** The author (in rooms also moderators) deletes: a tombstone keeps the seq. */
  z.object({ type: z.literal("delete_message"), id: RequestId, conversationId: ConversationRef, messageId: MessageId }),
  /** Toggle one emoji on a message. */
  z.object({ type: z.literal("react"), id: RequestId, conversationId: ConversationRef, messageId: MessageId, emoji: Emoji, on: z.boolean() }),
  z.object({ type: z.literal("presence"), id: RequestId, status: SettableStatus.optional() }),
  z.object({ type: z.literal("subscribe_presence"), id: RequestId, userIds: z.array(UserId).min(1).max(PRESENCE_IDS_PER_FRAME_MAX) }),
  z.object({ type: z.literal("unsubscribe_presence"), id: RequestId, userIds: z.array(UserId).min(1).max(PRESENCE_IDS_PER_FRAME_MAX) }),
  /** Inbox resume: replay DMs after `since` per conversation (conversationId → last seq seen). */
  z.object({
    type: z.literal("sync"),
    id: RequestId,
    since: z
      .record(z.string().max(128), Seq)
      .refine((since) => Object.keys(since).length <= SYNC_CONVERSATIONS_MAX, `at most ${SYNC_CONVERSATIONS_MAX} conversations per sync`),
    /** The highest `rev` the client has seen on this inbox: changes after it to messages it holds are replayed. */
    sinceRev: Seq.optional(),
  }),
  z.object({ type: z.literal("ping"), id: RequestId }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type ClientMessageType = ClientMessage["type"];

// ---------------------------------------------------------------- server → client

/** Who holds which role in a room; `you` is the reader's own (room_state, and the room's REST info). */
export const RoomRoles = z.object({
  owner: z.string().nullable(),
  moderators: z.array(z.string()),
  you: z.enum(["owner", "moderator", "member", "admin"]),
});
/** A room's moderation settings (room_state, and the room's REST info). */
export const RoomSettings = z.object({ visibility: z.enum(["public", "private"]), slowModeSec: z.number().int(), frozen: z.boolean() });

const PresentUser = z.object({ userId: z.string(), name: z.string() });

const ServerFrame = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("room_state"),
    roomId: z.string(),
    present: z.array(PresentUser),
    messages: z.array(RoomMessage),
    lastSeq: z.number().int(),
    /** Set when a `since` replay stopped at its bound: messages after `nextSince` are still missing. */
    replayTruncated: z.literal(true).optional(),
    /** With `replayTruncated`: the last seq replayed; pass it as the next `join_room` `since`. */
    nextSince: z.number().int().optional(),
    /** The room's latest change position; pass it back as `join_room` `sinceRev`. */
    lastRev: z.number().int().optional(),
    /** Set when the `sinceRev` replay of changes stopped at its bound: reload history instead. */
    changesTruncated: z.literal(true).optional(),
    /** Pinned messages, newest pin first. */
    pinned: z.array(RoomMessage).optional(),
    /** Who holds which role; `you` is the reader's own role. */
    roles: RoomRoles.optional(),
    settings: RoomSettings.optional(),
  }),
  z.object({ type: z.literal("message"), message: RoomMessage }),
  z.object({
    type: z.literal("system"),
    roomId: z.string(),
    /** `join`/`leave` are presence; the rest are moderation actions (`userId` is whom they concern). */
    event: z.enum([
      "join",
      "leave",
      "kick",
      "ban",
      "unban",
      "mute",
      "unmute",
      "moderator_added",
      "moderator_removed",
      "member_added",
      "member_removed",
      "pin",
      "unpin",
      "settings",
      "room_deleted",
    ]),
    userId: z.string(),
    name: z.string(),
    at: z.number(),
    /** Moderation: who acted, why, until when (ms since epoch), on which message. */
    by: z.string().optional(),
    reason: z.string().optional(),
    until: z.number().nullable().optional(),
    messageId: z.string().optional(),
  }),
  /** A message changed (edit): the whole message as it now is. */
  z.object({ type: z.literal("message_updated"), message: z.union([RoomMessage, DmMessage]) }),
  z.object({
    type: z.literal("message_deleted"),
    messageId: z.string(),
    seq: z.number().int(),
    deletedBy: z.string(),
    roomId: z.string().optional(),
    conversationId: z.string().optional(),
    rev: z.number().int().optional(),
  }),
  z.object({
    type: z.literal("reaction"),
    messageId: z.string(),
    emoji: z.string(),
    userId: z.string(),
    on: z.boolean(),
    /** The emoji's count on the message after this change. */
    count: z.number().int(),
    roomId: z.string().optional(),
    conversationId: z.string().optional(),
    rev: z.number().int().optional(),
  }),
  /** On the inbox of a user mentioned in a room they are not in. */
  z.object({
    type: z.literal("mention"),
    roomId: z.string(),
    roomName: z.string(),
    messageId: z.string(),
    seq: z.number().int(),
    from: z.string(),
    fromName: z.string(),
    preview: z.string(),
    at: z.number(),
  }),
  z.object({ type: z.literal("dm"), message: DmMessage }),
  z.object({
    type: z.literal("notification"),
    kind: z.literal("dm"),
    conversationId: z.string(),
    from: z.string(),
    fromName: z.string(),
    preview: z.string(),
    unread: z.number().int(),
  }),
  z.object({ type: z.literal("presence"), userId: z.string(), status: Status, lastSeen: z.number().nullable() }),
  z.object({
    type: z.literal("typing"),
    userId: z.string(),
    on: z.boolean(),
    roomId: z.string().optional(),
    conversationId: z.string().optional(),
  }),
  z.object({ type: z.literal("read"), conversationId: z.string(), userId: z.string(), seq: z.number().int() }),
  z.object({
    type: z.literal("ack"),
    id: RequestId,
    message: z.union([RoomMessage, DmMessage]).optional(),
    duplicate: z.boolean().optional(),
    /** On a `sync` ack: the replay stopped at its row budget; sync again from the new positions. */
    more: z.literal(true).optional(),
    /** On a `sync` ack: the change position this answer covers; send it back as the next `sync`'s `sinceRev`. */
    lastRev: z.number().int().optional(),
  }),
  z.object({
    type: z.literal("error"),
    id: RequestId,
    code: WsErrorCode,
    message: z.string(),
    retryAfterMs: z.number().int().optional(),
    /** With `muted` and `banned`: when it ends (ms since epoch); null when it does not. */
    until: z.number().nullable().optional(),
  }),
  z.object({ type: z.literal("pong"), id: RequestId }),
  z.object({
    type: z.literal("suggestion"),
    nearbyUsers: z.number().int(),
    rooms: z.array(z.object({ id: z.string(), name: z.string(), distanceKm: z.number() })),
    proposed: z.object({ name: z.string(), category: z.string(), lat: z.number(), lon: z.number() }).nullable(),
  }),
]);
type ServerFrame = z.infer<typeof ServerFrame>;

/** Several frames coalesced into one when they arrive faster than one-by-one sends can go out. In order. */
export const BatchFrame = z.object({ type: z.literal("batch"), frames: z.array(ServerFrame) });

export const ServerMessage = z.union([ServerFrame, BatchFrame]);
export type ServerMessage = z.infer<typeof ServerMessage>;
/** A frame that may go inside a batch (everything but `batch`). */
export type ServerFrameMessage = ServerFrame;

// ---------------------------------------------------------------- parsing

export type ParseResult =
  | { ok: true; msg: ClientMessage }
  | { ok: false; id?: string | number; code: WsErrorCode; message: string };

/** Parses one client frame: size, JSON, then the schema. Never throws. */
export function parseClientMessage(raw: string | ArrayBuffer): ParseResult {
  const bytes = typeof raw === "string" ? utf8Length(raw) : raw.byteLength;
  if (bytes > FRAME_MAX_BYTES) {
    return { ok: false, code: "too_large", message: `frame is ${bytes} bytes; the limit is ${FRAME_MAX_BYTES}` };
  }
  if (typeof raw !== "string") return { ok: false, code: "bad_request", message: "binary frames are not supported; send JSON text" };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, code: "bad_request", message: "frame is not valid JSON" };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, code: "bad_request", message: "frame must be a JSON object with a `type`" };
  }
  const obj = data as Record<string, unknown>;
  const id = typeof obj.id === "string" || typeof obj.id === "number" ? obj.id : undefined;
  const result = ClientMessage.safeParse(data);
  if (result.success) return { ok: true, msg: result.data };
  const issue = result.error.issues[0];
  if (issue?.code === "invalid_union" && issue.path.length === 1 && issue.path[0] === "type") {
    return { ok: false, id, code: "bad_request", message: `unknown frame type ${JSON.stringify(obj.type)}` };
  }
  if (issue?.code === "too_big" && issue.path[0] === "text") {
    return { ok: false, id, code: "too_large", message: issue.message };
  }
  const where = issue?.path?.length ? `${issue.path.join(".")}: ` : "";
  return { ok: false, id, code: "bad_request", message: `${where}${issue?.message ?? "invalid frame"}` };
}

function utf8Length(s: string): number {
  // Cheap upper bound first: most frames are far below the limit.
  if (s.length * 3 <= FRAME_MAX_BYTES) return s.length;
  return new TextEncoder().encode(s).byteLength;
}

/** Exhaustiveness guard for `switch (msg.type)`. */
export function assertNever(x: never): never {
  throw new Error(`unhandled: ${JSON.stringify(x)}`);
}
