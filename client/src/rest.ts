import { ChatError } from "./errors.js";
import type { DmMessage, MediaDescriptor, RoomMessage, Status } from "./wire.js";

// REST answers. The routes' zod schemas live with the routes (src/routes/*.ts), which import the
// server's runtime; these interfaces follow them and docs/rooms.md, docs/dms.md.

/** A room as listed. */
export interface RoomInfo {
  id: string;
  name: string;
  category: string;
  description: string;
  lat: number | null;
  lon: number | null;
  createdBy: string;
  createdAt: number;
  /** Distinct users joined now (a few seconds behind). */
  onlineCount: number;
  messageCount: number;
  lastMessageAt: number | null;
  /** `private` rooms are listed, readable and joinable only by their members. */
  visibility?: Visibility;
  /** With `rooms({ joined: true })`: messages after the caller's read position (`room.markRead`); null if the room did not answer. */
  unread?: number | null;
  /** With `rooms({ joined: true })`: of those, how many mention the caller. */
  mentions?: number | null;
  /** With `rooms({ joined: true })`: the caller's read position. */
  readSeq?: number | null;
}

/** Who may see a room. */
export type Visibility = "public" | "private";

/** What `updateRoom` changes (owner or admin; moderators only `slowModeSec` and `frozen`). */
export interface RoomPatch {
  name?: string;
  description?: string;
  category?: string;
  /** Seconds each member waits between messages; 0 turns slow mode off. */
  slowModeSec?: number;
  /** A frozen room refuses every message (`frozen`). */
  frozen?: boolean;
}

/** A page of results and the cursor of the next page (null on the last). */
export interface Page<M> {
  messages: M[];
  nextCursor: string | null;
}

/** A room's moderation settings. */
export interface RoomSettings {
  visibility: Visibility;
  slowModeSec: number;
  frozen: boolean;
}

/** A ban or a mute in a room. */
export interface Sanction {
  userId: string;
  /** When it ends (ms since epoch); null when it does not. */
  until: number | null;
  reason: string | null;
  by: string;
  at: number;
}

/** A report of a message (the moderators' queue). */
export interface Report {
  id: number;
  messageId: string;
  reporter: string;
  reason: string;
  at: number;
  status: "open" | "resolved";
  resolvedBy: string | null;
  resolvedAt: number | null;
  resolution: string | null;
  /** The message as it is now (null: gone from the log). */
  message: RoomMessage | null;
}

/** One moderation action: who did what to whom, when and why. */
export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

/** A page of a moderation list, newest first; pass `nextBefore` as `before` (null on the last). */
type ModPage<K extends string, T> = { [k in K]: T[] } & { nextBefore: number | null };

/** What `createRoom` takes. */
export interface NewRoom {
  name: string;
  category: string;
  description?: string;
  lat?: number;
  lon?: number;
  /** Default `public`. */
  visibility?: Visibility;
}

/** One page of a list: the items and the cursor of the next page (null on the last). */
export interface RoomPage {
  rooms: RoomInfo[];
  nextCursor: string | null;
}

/** A page of history, newest first; pass `nextBefore` as `before` for the next (null at the start). */
export interface HistoryPage<M> {
  messages: M[];
  nextBefore: number | null;
}

/** One of the user's DM conversations. */
export interface Conversation {
  id: string;
  peer: { id: string; name: string };
  lastMessage: DmMessage | null;
  unread: number;
  lastSeq: number;
  readSeq: number;
  peerReadSeq: number;
  createdAt: number;
  updatedAt: number;
}

/** A user's status as `GET /api/presence` answers it. */
export interface PresenceEntry {
  userId: string;
  status: Status;
  lastSeen: number | null;
}

/** A located room near the user. */
export interface NearbyRoom extends Omit<RoomInfo, "createdBy" | "createdAt" | "lat" | "lon"> {
  lat: number;
  lon: number;
  distanceKm: number;
}

/** `GET /api/chat/rooms/suggestions`. */
export interface Suggestions {
  status: "rooms" | "propose" | "below_threshold" | "no_location";
  reason: string;
  nearbyUsers: number;
  threshold: number;
  radiusKm: number;
  activeWindowMinutes: number;
  location: { lat: number; lon: number; source: "query" | "stored" | "cf"; updatedAt: number } | null;
  rooms: NearbyRoom[];
  /** A local room to create (with `createRoom`) when none exists nearby. */
  proposed: { name: string; category: "local"; description: string; lat: number; lon: number } | null;
}

/** An uploaded medium; pass its `id` in `mediaIds`. */
export interface UploadedMedia extends MediaDescriptor {
  sha256: string;
  createdAt: number;
}

/** Upload progress, in bytes. */
export interface UploadProgress {
  loaded: number;
  total: number;
}

/** The part of XMLHttpRequest the upload uses (declared here so the SDK needs no DOM types). */
interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: unknown): void;
  upload: { onprogress: ((ev: { loaded: number; total: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  readonly status: number;
  readonly responseText: string;
}

type Query = Record<string, string | number | boolean | undefined>;

/** REST transport: base URL, token and fetch. */
export interface RestContext {
  baseUrl: string;
  token(): Promise<string>;
  fetch: typeof fetch;
}

const enc = encodeURIComponent;
/** The path of a room, or of something under it. */
const R = (roomId: string, ...rest: string[]) => ["/api/chat/rooms", roomId, ...rest].map((p, i) => (i ? enc(p) : p)).join("/");

/** Every REST route the SDK wraps. Each answers the route's JSON or throws a `ChatError`. */
export class Rest {
  constructor(private ctx: RestContext) {}

  /**
   * Rooms, filtered and paginated by cursor. `joined: true`: the rooms the caller joined, each with
   * `unread` and `mentions`.
   */
  rooms(q: { category?: string; q?: string; cursor?: string; limit?: number; joined?: boolean } = {}): Promise<RoomPage> {
    return this.call("GET", "/api/chat/rooms", q);
  }

  /** Every category with its room count. */
  async categories(): Promise<{ category: string; count: number }[]> {
    return (await this.call<{ categories: { category: string; count: number }[] }>("GET", "/api/chat/rooms/categories")).categories;
  }

  /** One room. */
  getRoom(roomId: string): Promise<RoomInfo> {
    return this.call("GET", R(roomId));
  }

  /** Creates a room (`visibility: "private"`: only its members see it). */
  createRoom(room: NewRoom): Promise<RoomInfo> {
    return this.call("POST", "/api/chat/rooms", undefined, room);
  }

  /** Changes a room's name, description, category, slow mode or frozen state. */
  updateRoom(roomId: string, patch: RoomPatch): Promise<{ settings: RoomSettings }> {
    return this.call("PATCH", R(roomId), undefined, patch);
  }

  /** Deletes a room and its log (owner, admin); its sockets are closed. */
  async deleteRoom(roomId: string): Promise<void> {
    await this.call("DELETE", R(roomId));
  }

  /** A page of a room's history, newest first. */
  roomHistory(roomId: string, q: { before?: number; limit?: number } = {}): Promise<HistoryPage<RoomMessage>> {
    return this.call("GET", R(roomId, "messages"), q);
  }

  /** A thread: the parent message and a page of its replies, oldest first (tombstones keep their place). */
  replies(
    roomId: string,
    messageId: string,
    q: { cursor?: string; limit?: number } = {},
  ): Promise<{ parent: RoomMessage; replies: RoomMessage[]; nextCursor: string | null }> {
    return this.call("GET", R(roomId, "messages", messageId, "replies"), q);
  }

  /** Full-text search over a room's log, best match first (deleted messages never match). */
  searchRoom(roomId: string, q: { q: string; cursor?: string; limit?: number }): Promise<Page<RoomMessage>> {
    return this.call("GET", R(roomId, "search"), q);
  }

  /** Full-text search over the caller's DMs (or one conversation's), best match first. */
  searchDms(q: { q: string; conversationId?: string; cursor?: string; limit?: number }): Promise<Page<DmMessage>> {
    return this.call("GET", "/api/chat/dms/search", q);
  }

  // ---- moderation (shared/DESIGN.md "Moderation and private rooms"); refusals are ChatErrors (403 forbidden, …)

  /** Names (`on`) or removes a moderator (owner, admin). */
  async setModerator(roomId: string, userId: string, on = true): Promise<void> {
    await this.call(on ? "PUT" : "DELETE", R(roomId, "moderators", userId));
  }

  /** Bans a user (moderators): their sockets close and joins are refused, for `durationSec` or for ever. */
  ban(roomId: string, userId: string, o: { reason?: string; durationSec?: number } = {}): Promise<{ ban: Sanction }> {
    return this.call("PUT", R(roomId, "bans", userId), undefined, o);
  }

  /** Lifts a ban. */
  async unban(roomId: string, userId: string): Promise<void> {
    await this.call("DELETE", R(roomId, "bans", userId));
  }

  /** The room's bans (moderators). */
  bans(roomId: string): Promise<{ bans: Sanction[] }> {
    return this.call("GET", R(roomId, "bans"));
  }

  /** Mutes a user for `durationSec` (moderators): their sends are refused with `muted`. */
  mute(roomId: string, userId: string, o: { durationSec: number; reason?: string }): Promise<{ mute: Sanction }> {
    return this.call("PUT", R(roomId, "mutes", userId), undefined, o);
  }

  /** Lifts a mute. */
  async unmute(roomId: string, userId: string): Promise<void> {
    await this.call("DELETE", R(roomId, "mutes", userId));
  }

  /** Closes a user's sockets in the room (moderators); they may come back. */
  kick(roomId: string, userId: string, reason?: string): Promise<{ closed: number }> {
    return this.call("POST", R(roomId, "kicks"), undefined, { userId, reason });
  }

  /** Pins (`on`) or unpins a message (moderators); pins come in `room_state.pinned`. */
  async pin(roomId: string, messageId: string, on = true): Promise<void> {
    await this.call(on ? "PUT" : "DELETE", R(roomId, "pins", messageId));
  }

  /** Sets the room's word list (moderators), on top of the deployment's: matching sends get `filtered`. */
  setFilters(roomId: string, words: string[]): Promise<{ words: string[] }> {
    return this.call("PUT", R(roomId, "filters"), undefined, { words });
  }

  /** Reports a message to the room's moderators. */
  report(roomId: string, messageId: string, reason: string): Promise<{ id: number }> {
    return this.call("POST", R(roomId, "messages", messageId, "reports"), undefined, { reason });
  }

  /** The room's report queue, newest first (moderators). */
  reports(roomId: string, q: { status?: "open" | "resolved" | "all"; before?: number; limit?: number } = {}): Promise<ModPage<"reports", Report>> {
    return this.call("GET", R(roomId, "reports"), q);
  }

  /** Closes a report with what was done (moderators). */
  async resolveReport(roomId: string, reportId: number, resolution: string): Promise<void> {
    await this.call("POST", R(roomId, "reports", String(reportId), "resolve"), undefined, { resolution });
  }

  /** Every moderation action in the room, newest first (moderators). */
  audit(roomId: string, q: { before?: number; limit?: number } = {}): Promise<ModPage<"entries", AuditEntry>> {
    return this.call("GET", R(roomId, "audit"), q);
  }

  /** Adds (`on`) or removes a member of a private room (owner, moderators; a member may remove themself). */
  async setMember(roomId: string, userId: string, on = true): Promise<void> {
    await this.call(on ? "PUT" : "DELETE", R(roomId, "members", userId));
  }

  /** The members of a private room (for its members). */
  members(roomId: string): Promise<{ members: { userId: string; addedAt: number; role: string }[] }> {
    return this.call("GET", R(roomId, "members"));
  }

  /** Room suggestions near `lat`/`lon` (else the user's last known location). */
  suggestions(q: { lat?: number; lon?: number } = {}): Promise<Suggestions> {
    return this.call("GET", "/api/chat/rooms/suggestions", q);
  }

  /** The user's DM conversations, most recent first. */
  conversations(q: { cursor?: string; limit?: number } = {}): Promise<{ conversations: Conversation[]; nextCursor: string | null }> {
    return this.call("GET", "/api/chat/dms", q);
  }

  /** Creates or returns the conversation with a user (refused with `blocked` if either blocks the other). */
  openConversation(userId: string): Promise<Conversation> {
    return this.call("POST", "/api/chat/dms", undefined, { userId });
  }

  /** A page of a conversation's history, newest first. */
  dmHistory(conversationId: string, q: { before?: number; limit?: number } = {}): Promise<HistoryPage<DmMessage>> {
    return this.call("GET", `/api/chat/dms/${enc(conversationId)}/messages`, q);
  }

  /** Users the caller blocks, most recent first, a page at a time (pass `nextCursor` back as `cursor`). */
  blocks(q: { cursor?: string; limit?: number } = {}): Promise<{ blocks: { userId: string; createdAt: number }[]; nextCursor: string | null }> {
    return this.call("GET", "/api/chat/blocks", q);
  }

  /** Blocks a user. */
  block(userId: string): Promise<{ userId: string; createdAt: number }> {
    return this.call("POST", "/api/chat/blocks", undefined, { userId });
  }

  /** Unblocks a user (idempotent). */
  async unblock(userId: string): Promise<void> {
    await this.call("DELETE", `/api/chat/blocks/${enc(userId)}`);
  }

  /** Statuses of up to 100 users. */
  async presence(userIds: string[]): Promise<PresenceEntry[]> {
    return (await this.call<{ presence: PresenceEntry[] }>("GET", "/api/presence", { userIds: userIds.join(",") })).presence;
  }

  /**
   * Uploads an image or file (the server checks the type from the bytes). With `onProgress` and
   * `XMLHttpRequest` (browsers) the upload reports progress; elsewhere it uses fetch.
   */
  async upload(data: Blob | ArrayBuffer | Uint8Array, options: { onProgress?: (p: UploadProgress) => void } = {}): Promise<UploadedMedia> {
    const url = `${this.ctx.baseUrl}/api/chat/media`;
    const token = await this.ctx.token();
    const XHR = (globalThis as { XMLHttpRequest?: new () => XhrLike }).XMLHttpRequest;
    if (options.onProgress && XHR) {
      const onProgress = options.onProgress;
      return new Promise((resolve, reject) => {
        const xhr = new XHR();
        xhr.open("POST", url);
        xhr.setRequestHeader("Authorization", `Bearer ${token}`);
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
        xhr.upload.onprogress = (ev) => onProgress({ loaded: ev.loaded, total: ev.total });
        xhr.onload = () => {
          try {
            resolve(answer(xhr.status, xhr.responseText) as UploadedMedia);
          } catch (err) {
            reject(err);
          }
        };
        xhr.onerror = () => reject(new ChatError("network", "the upload got no answer"));
        xhr.send(data);
      });
    }
    const res = await this.send(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream" },
      body: data as BodyInit,
    });
    return answer(res.status, await res.text()) as UploadedMedia;
  }

  /** Any JSON route; the building block of the others. */
  async call<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
    let url = `${this.ctx.baseUrl}${path}`;
    const qs = Object.entries(query ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    if (qs) url += `?${qs}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.ctx.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await this.send(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return answer(res.status, await res.text()) as T;
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.ctx.fetch(url, init);
    } catch (err) {
      throw new ChatError("network", `${init.method} ${url} got no answer: ${(err as Error).message}`);
    }
  }
}

/** The body of a 2xx answer, or the server's error as a ChatError. */
function answer(status: number, text: string): unknown {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (status >= 200 && status < 300) return body;
  const e = (body as { error?: { code?: string; message?: string; requestId?: string; retryAfterMs?: number; until?: number | null } } | undefined)
    ?.error;
  throw new ChatError(e?.code ?? `http_${status}`, e?.message ?? `HTTP ${status}`, e?.retryAfterMs, status, e?.requestId, e?.until);
}
