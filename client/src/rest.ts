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
  /** `private`: listed and readable by its members only (docs/moderation.md). */
  visibility?: "public" | "private";
}

/** What `createRoom` takes. */
export interface NewRoom {
  name: string;
  category: string;
  description?: string;
  lat?: number;
  lon?: number;
  /** Default `public`. */
  visibility?: "public" | "private";
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

/** Every REST route the SDK wraps. Each answers the route's JSON or throws a `ChatError`. */
export class Rest {
  constructor(private ctx: RestContext) {}

  /** Rooms, filtered and paginated by cursor. */
  rooms(q: { category?: string; q?: string; cursor?: string; limit?: number } = {}): Promise<RoomPage> {
    return this.call("GET", "/api/chat/rooms", q);
  }

  /** Every category with its room count. */
  async categories(): Promise<{ category: string; count: number }[]> {
    return (await this.call<{ categories: { category: string; count: number }[] }>("GET", "/api/chat/rooms/categories")).categories;
  }

  /** One room. */
  getRoom(roomId: string): Promise<RoomInfo> {
    return this.call("GET", `/api/chat/rooms/${encodeURIComponent(roomId)}`);
  }

  /** Creates a room. */
  createRoom(room: NewRoom): Promise<RoomInfo> {
    return this.call("POST", "/api/chat/rooms", undefined, room);
  }

  /** A page of a room's history, newest first. */
  roomHistory(roomId: string, q: { before?: number; limit?: number } = {}): Promise<HistoryPage<RoomMessage>> {
    return this.call("GET", `/api/chat/rooms/${encodeURIComponent(roomId)}/messages`, q);
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
    return this.call("GET", `/api/chat/dms/${encodeURIComponent(conversationId)}/messages`, q);
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
    await this.call("DELETE", `/api/chat/blocks/${encodeURIComponent(userId)}`);
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
  const e = (body as { error?: { code?: string; message?: string; requestId?: string; retryAfterMs?: number } } | undefined)?.error;
  throw new ChatError(e?.code ?? `http_${status}`, e?.message ?? `HTTP ${status}`, e?.retryAfterMs, status, e?.requestId);
}
