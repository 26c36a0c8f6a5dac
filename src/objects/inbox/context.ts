/**
 * What the Inbox's parts share: the wire types and constants of the inbox, and the context each part
 * is given (the object's state, its socket host, its store and the other parts). The parts are the
 * Inbox's concerns, one file each: `dms.ts` (conversations and messages), `lifecycle.ts` (edits,
 * deletions, reactions and the outbox to the peer), `search.ts`, `status.ts` (the user's status and
 * subscriptions), `blocks.ts`, `push.ts`; `store.ts` owns the storage; `index.ts` is the
 * Durable Object itself, a thin dispatcher.
 */
import type { DmMessage, MediaDescriptor, ServerMessage } from "../../protocol";
import type { BaseSession } from "../session";
import type { SocketHost } from "../socket-host";
import type { StatusView } from "../status";
import type { InboxBlocks } from "./blocks";
import type { InboxDms } from "./dms";
import type { InboxLifecycle } from "./lifecycle";
import type { InboxPush } from "./push";
import type { InboxSearch } from "./search";
import type { InboxStatus } from "./status";
import type { InboxStore } from "./store";

/** A socket's attachment: the common session, and the hold of a resuming socket. */
export interface InboxSession extends BaseSession {
  /**
   * Set on a socket opened with `?sync=1` until its `sync` is answered in full: live `dm` frames are
   * not sent to it (its `sync` reads them from storage), so a resume gets every missed message and then
   * the live ones, in seq order, each once. The value is the highest message rowid when the socket
   * opened: messages of conversations the `sync` does not name that arrived after it are in its answer.
   */
  holdFrom?: number;
  /**
   * With `holdFrom`: the inbox's `rev` when the socket opened. Lifecycle frames (`message_updated`,
   * `message_deleted`, `reaction`) are held too, and a `sync` without `sinceRev` replays the changes
   * after this one, so none made during the hold is lost.
   */
  holdRev?: number;
}

/** The query parameter of the inbox socket that holds live `dm` frames until the socket's `sync` (see `InboxSession.holdFrom`). */
export const SYNC_PARAM = "sync";
/** A conversation as listed for its owner. */
export interface ConversationSummary {
  id: string;
  peer: { id: string; name: string };
  lastMessage: DmMessage | null;
  unread: number;
  lastSeq: number;
  /** The owner's read position, in the owner's numbering. */
  readSeq: number;
  /** The peer's read position, translated into the owner's numbering. */
  peerReadSeq: number;
  createdAt: number;
  updatedAt: number;
}

/** The recipient inbox's answer to a delivery. */
export type ReceiveResult =
  | {
      ok: true;
      message: DmMessage;
      duplicate: boolean;
      peerView: StatusView | null;
      subscribedBack: boolean;
      /** False when the recipient refused `senderSubscribes` (at SUBSCRIBERS_MAX); absent means accepted. */
      senderSubscribed?: boolean;
    }
  | { ok: false; code: "blocked" };

/** What a DM delivery carries from the sender's inbox. */
export interface IncomingDm {
  id: string;
  conversationId: string;
  from: string;
  fromName: string;
  to: string;
  clientMsgId: string;
  text?: string;
  media?: MediaDescriptor[];
  createdAt: number;
  /** The sender subscribes to the recipient's status (first contact): the recipient records it. */
  senderSubscribes: boolean;
  /** The sender's status as the recipient may see it, sent on first contact. */
  senderView: StatusView | null;
  /**
   * False when the sender's inbox cannot take the recipient as a subscriber (at SUBSCRIBERS_MAX), so
   * the recipient does not subscribe back. Absent means it can.
   */
  senderAcceptsSubscriber?: boolean;
}

export type OpenResult =
  | { ok: true; created: boolean; conversation: ConversationSummary }
  | { ok: false; code: "blocked" | "not_found" | "bad_request"; message: string };

/**
 * Most messages replayed by one `sync` frame, over all its conversations: when the budget cuts the
 * replay short the ack says `more: true` and the client syncs again from its new positions.
 */
export const SYNC_ROWS_MAX = 1000;
/**
 * Most inboxes that may watch one user's status. Every change is one RPC per subscriber, and anyone
 * can subscribe to anyone, so the fan-out of a single change is capped here (well inside the paid
 * plan's 10,000 subrequests per invocation); past it, new subscribers get a snapshot but no changes.
 */
export const SUBSCRIBERS_MAX = 5000;
/** Most RPCs one inbox keeps in flight for one fan-out or lookup (status pushes, subscribe, presence). */
export const RPC_CONCURRENCY = 50;
/** Most open inbox sockets of one user (devices and tabs), as for a user in a room. */
export const INBOX_SOCKETS_MAX = 32;
/** Presence and replay frames per `batch` frame. */
export const BATCH_MAX = 100;
/** Lower bound between two sweeps, so a flood of short deadlines cannot spin the alarm. */
export const SWEEP_MIN_INTERVAL_MS = 1000;
/** Delay before a sweep that failed part-way is tried again. */
export const SWEEP_RETRY_MS = 10_000;

/** What every part of the Inbox is given. The parts are set once, right after construction. */
export interface InboxContext {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  /** Whose inbox this is: the object's name (a user id). */
  readonly owner: string;
  readonly sql: SqlStorage;
  readonly host: SocketHost<InboxSession>;
  store: InboxStore;
  dms: InboxDms;
  status: InboxStatus;
  blocks: InboxBlocks;
  push: InboxPush;
  lifecycle: InboxLifecycle;
  search: InboxSearch;
  /** Sends a frame to every open socket but `except`; returns how many got it. */
  broadcast(frame: ServerMessage, except?: WebSocket): number;
  /** The user's open sockets, optionally leaving one out. */
  openSockets(except?: WebSocket): WebSocket[];
  /** Runs `fn` after every earlier call with the same key has settled. */
  serialize<T>(key: string, fn: () => Promise<T>): Promise<T>;
}
