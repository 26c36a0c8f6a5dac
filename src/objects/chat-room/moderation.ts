/**
 * Moderation and private rooms, kept by the room's Durable Object in its own SQLite (authoritative;
 * D1 only mirrors private-room membership for the directory): roles, bans, mutes, slow mode,
 * freeze, pins, the word filter, reports and the audit log. docs/moderation.md is the reference.
 *
 * Everything a send checks (ban, mute, freeze, slow mode, filter) is held in memory, loaded once per
 * object lifetime from the room's SQLite, and written through on every change: the hot path reads
 * no storage and makes no call (the one exception: the first send of a user after a wake-up while
 * slow mode is on reads that user's last message time from the log once).
 *
 * The ChatRoom class stays a thin dispatcher: it hands every REST action to {@link Moderation.apply}
 * with the socket effects it owns ({@link RoomEffects}: publish a `system` frame, close a user's
 * sockets, read a message).
 */
import type { RoomMessage, ServerMessage, WsErrorCode } from "../../protocol";
import { compileFilter, type CompiledFilter, FILTER_WORD_MAX, FILTER_WORDS_MAX, normalizeWord } from "./filter";

/** A user's role in one room. `admin` comes from the token (deployment-wide), the rest from the room. */
export type Role = "owner" | "moderator" | "member" | "admin";
/** Visibility, fixed at creation. */
export type Visibility = "public" | "private";

/** Who is acting: the authenticated caller, as the Worker saw the token. */
export interface Actor {
  userId: string;
  name: string;
  /** The token carries the deployment admin claim (`ADMIN_CLAIM`). */
  admin: boolean;
}

/** The room's settings as `room_state.settings` shows them. */
export interface RoomSettings {
  visibility: Visibility;
  slowModeSec: number;
  frozen: boolean;
}

/** A ban or mute: until when (null: until lifted), why, by whom, since when. */
export interface Sanction {
  userId: string;
  until: number | null;
  reason: string | null;
  by: string;
  at: number;
}

/** One audit entry: who did what to whom, when and why. */
export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

/** One report of a message. */
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

/** A refused send: the error frame's fields. */
export interface Refusal {
  code: WsErrorCode;
  message: string;
  until?: number | null;
  retryAfterMs?: number;
}

/** Most pinned messages in a room. */
export const PINS_MAX = 25;
/** Longest slow-mode interval and longest timed ban or mute. */
export const SLOW_MODE_MAX_SEC = 6 * 3600;
export const SANCTION_MAX_SEC = 365 * 24 * 3600;
/** Most rows one read of the audit log or the report queue returns. */
export const MOD_PAGE_MAX = 100;

/** What the room object does for moderation: the socket side of an action. */
export interface RoomEffects {
  roomId: string;
  /** Sends a frame to every joined socket. */
  publish(frame: Extract<ServerMessage, { type: "system" }>): void;
  /** Sends `error` then closes every socket of `userId` (closed at once, announced as a leave); returns how many. */
  closeUser(userId: string, error: Refusal, reason: string): Promise<number>;
  /** A message of the log by id (null: none). */
  message(messageId: string): RoomMessage | null;
  /** The display name of a present user, else the id. */
  nameOf(userId: string): string;
}

/** Every REST action on a room's moderation, as the Worker forwards it (one RPC, `moderate`). */
export type ModAction =
  | { type: "moderator"; userId: string; on: boolean }
  | { type: "ban"; userId: string; reason?: string; durationSec?: number }
  | { type: "unban"; userId: string }
  | { type: "bans" }
  | { type: "mute"; userId: string; durationSec: number; reason?: string }
  | { type: "unmute"; userId: string }
  | { type: "kick"; userId: string; reason?: string }
  | { type: "pin"; messageId: string; on: boolean }
  | { type: "filter"; words: string[] }
  | { type: "settings"; name?: string; description?: string; category?: string; slowModeSec?: number; frozen?: boolean }
  | { type: "member"; userId: string; on: boolean }
  | { type: "members" }
  | { type: "report"; messageId: string; reason: string }
  | { type: "reports"; status: "open" | "resolved" | "all"; before?: number; limit: number }
  | { type: "resolve_report"; reportId: number; resolution: string }
  | { type: "audit"; before?: number; limit: number }
  | { type: "info" }
  | { type: "delete_room" };

/** The answer to an action: data, or a refusal the Worker renders with its one error renderer. */
export type ModResult =
  | { ok: true; data?: unknown }
  | { ok: false; code: "not_found" | "forbidden" | "bad_request" | "conflict" | "banned"; message: string };

/** The room's storage for moderation: appended to the room's schema (`schema.ts`, version 4). */
export const MODERATION_TABLES = [
  `CREATE TABLE IF NOT EXISTS mod_roles (user_id TEXT PRIMARY KEY, role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS mod_members (user_id TEXT PRIMARY KEY, added_by TEXT NOT NULL, added_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS mod_bans (user_id TEXT PRIMARY KEY, until INTEGER, reason TEXT, by TEXT NOT NULL, at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS mod_mutes (user_id TEXT PRIMARY KEY, until INTEGER NOT NULL, reason TEXT, by TEXT NOT NULL, at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS mod_pins (message_id TEXT PRIMARY KEY, pinned_by TEXT NOT NULL, pinned_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS mod_filter_words (word TEXT PRIMARY KEY)`,
  `CREATE TABLE IF NOT EXISTS mod_reports (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    reporter TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_by TEXT,
    resolved_at INTEGER,
    resolution TEXT,
    UNIQUE (message_id, reporter)
  )`,
  `CREATE INDEX IF NOT EXISTS mod_reports_status_idx ON mod_reports (status, id)`,
  `CREATE TABLE IF NOT EXISTS mod_audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    reason TEXT,
    detail TEXT
  )`,
] as const;

const RANK: Record<Role, number> = { member: 0, moderator: 1, owner: 2, admin: 3 };

/** The moderation state of one room. */
export class Moderation {
  private owner: string | null = null;
  private readonly moderators = new Set<string>();
  private readonly members = new Set<string>();
  private readonly bans = new Map<string, Sanction>();
  private readonly mutes = new Map<string, Sanction>();
  private settings: RoomSettings = { visibility: "public", slowModeSec: 0, frozen: false };
  private roomWords: string[] = [];
  private filter: CompiledFilter;
  /** Each user's last accepted send (slow mode); a miss reads the log once. */
  private readonly lastSend = new Map<string, number>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly deploymentWords: readonly string[],
    private readonly roomId: () => string,
  ) {
    this.filter = compileFilter(deploymentWords);
  }

  /** Reads everything a send checks; after the schema is ready. */
  load(): void {
    const meta = new Map(this.sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key LIKE 'mod_%'").toArray().map((r) => [r.key, r.value]));
    this.owner = meta.get("mod_owner") ?? null;
    this.settings = {
      visibility: meta.get("mod_visibility") === "private" ? "private" : "public",
      slowModeSec: Number(meta.get("mod_slow_mode_sec") ?? 0) || 0,
      frozen: meta.get("mod_frozen") === "1",
    };
    this.moderators.clear();
    for (const r of this.sql.exec<{ user_id: string }>("SELECT user_id FROM mod_roles WHERE role = 'moderator'")) this.moderators.add(r.user_id);
    this.members.clear();
    for (const r of this.sql.exec<{ user_id: string }>("SELECT user_id FROM mod_members")) this.members.add(r.user_id);
    this.bans.clear();
    for (const r of this.sql.exec<SanctionRow>("SELECT * FROM mod_bans")) this.bans.set(r.user_id, toSanction(r));
    this.mutes.clear();
    for (const r of this.sql.exec<SanctionRow>("SELECT * FROM mod_mutes")) this.mutes.set(r.user_id, toSanction(r));
    this.roomWords = this.sql.exec<{ word: string }>("SELECT word FROM mod_filter_words ORDER BY word").toArray().map((r) => r.word);
    this.filter = compileFilter([...this.deploymentWords, ...this.roomWords]);
    this.lastSend.clear();
  }

  // ---------------------------------------------------------------- reads used on every path

  /** The role of a user here (`admin` when the token says so, whatever the room says). */
  roleOf(userId: string, admin = false): Role {
    if (admin) return "admin";
    if (userId === this.owner) return "owner";
    if (this.moderators.has(userId)) return "moderator";
    return "member";
  }

  /** True for the owner, a moderator or an admin. */
  isModerator(userId: string, admin = false): boolean {
    return RANK[this.roleOf(userId, admin)] >= RANK.moderator;
  }

  get visibility(): Visibility {
    return this.settings.visibility;
  }

  /**
   * The one read gate: may this user learn that the room exists, read it, join it? A public room:
   * everyone; a private one: its members and admins. A refusal is answered exactly as a room that
   * does not exist.
   */
  canRead(userId: string, admin = false): boolean {
    if (this.settings.visibility === "public" || admin) return true;
    if (!this.members.has(userId) && userId !== this.owner) return false;
    // A banned member of a private room reads nothing of it until the ban ends (the owner cannot be banned).
    return userId === this.owner || this.banOf(userId) === null;
  }

  /** The user's ban in force, if any (an expired one is lifted here). */
  banOf(userId: string, now = Date.now()): Sanction | null {
    return this.current(this.bans, "mod_bans", userId, now);
  }

  /** Why this user may not join (or connect): not a member of a private room, or banned. */
  joinRefusal(userId: string, admin: boolean, now = Date.now()): Refusal | null {
    if (!this.canRead(userId, admin)) return { code: "not_found", message: `No room ${this.roomId()}.` };
    if (admin) return null;
    const ban = this.banOf(userId, now);
    if (ban) return banRefusal(ban);
    return null;
  }

  /**
   * Checks a send, in memory: ban, freeze, mute, slow mode, then the word filter. Null: allowed.
   * Owner, moderators and admins are exempt from freeze and slow mode (not from the filter).
   */
  checkSend(userId: string, admin: boolean, text: string | undefined, now: number): Refusal | null {
    const refusal = this.checkChange(userId, admin, undefined, now);
    if (refusal) return refusal;
    if (this.settings.slowModeSec > 0 && !this.isModerator(userId, admin)) {
      const last = this.lastSendOf(userId);
      const wait = last === null ? 0 : last + this.settings.slowModeSec * 1000 - now;
      if (wait > 0) return { code: "slow_mode", message: `Slow mode: one message every ${this.settings.slowModeSec} s.`, retryAfterMs: Math.ceil(wait) };
    }
    // The word is not echoed: the sender knows what they wrote, and logs should not collect it.
    return text === undefined ? null : this.filterRefusal(text);
  }

  /**
   * Checks a change to an existing message (edit, delete, reaction), in memory: ban, freeze, mute,
   * then the word filter on an edit's new text. Slow mode paces new messages only.
   */
  checkChange(userId: string, admin: boolean, text: string | undefined, now: number): Refusal | null {
    const mod = this.isModerator(userId, admin);
    if (!admin) {
      const ban = this.banOf(userId, now);
      if (ban) return banRefusal(ban);
    }
    if (this.settings.frozen && !mod) return { code: "frozen", message: "The room is frozen (read-only)." };
    if (!mod) {
      const mute = this.current(this.mutes, "mod_mutes", userId, now);
      if (mute) return { code: "muted", message: `You are muted in this room until ${new Date(mute.until ?? 0).toISOString()}.`, until: mute.until };
    }
    return text === undefined ? null : this.filterRefusal(text);
  }

  /** A moderator's deletion of someone else's message, in the audit log (the tombstone says who deleted it). */
  auditDelete(by: string, m: RoomMessage, at: number): void {
    this.audit(at, by, "delete_message", m.userId, null, { messageId: m.id, seq: m.seq });
  }

  /**
   * The filter alone (deployment + room lists, compiled): for an edit's new text, which must be
   * refused `filtered` like a send (`matchesFilter` in filter.ts is the same rule for any list).
   */
  filterRefusal(text: string): Refusal | null {
    if (this.filter.size === 0 || this.filter.match(text) === null) return null;
    return { code: "filtered", message: "The message contains a word this room does not allow." };
  }

  /** Records an accepted send (slow mode's clock). */
  noteSent(userId: string, at: number): void {
    if (this.settings.slowModeSec > 0) this.lastSend.set(userId, at);
  }

  /** `room_state`'s `roles`, `settings` and `pinned` for a reader. */
  stateFor(userId: string, admin: boolean, message: (id: string) => RoomMessage | null) {
    return {
      roles: { owner: this.owner, moderators: [...this.moderators].sort(), you: this.roleOf(userId, admin) },
      settings: { ...this.settings },
      pinned: this.pinned(message),
    };
  }

  // ---------------------------------------------------------------- creation and deletion

  /** Sets the owner and visibility of a new room (the Worker calls it right after the D1 insert). Idempotent for the same owner. */
  init(owner: string, visibility: Visibility, now = Date.now()): void {
    if (this.owner !== null && this.owner !== owner) throw new Error(`room already owned by ${this.owner}`);
    this.setMeta("mod_owner", owner);
    this.setMeta("mod_visibility", visibility);
    this.owner = owner;
    this.settings.visibility = visibility;
    if (visibility === "private") this.addMember(owner, owner, now);
    this.audit(now, owner, "create", null, null, { visibility });
  }

  /**
   * A room created before owners existed has none: the first action through the Worker passes the
   * creator from the directory (`rooms.created_by`), who becomes the owner.
   */
  adoptOwner(createdBy: string | null): void {
    if (this.owner !== null || !createdBy) return;
    this.setMeta("mod_owner", createdBy);
    this.owner = createdBy;
  }

  // ---------------------------------------------------------------- the REST actions

  /** Applies one action for `actor`: the read gate, the permission, the change, its audit entry and its system frame. */
  async apply(actor: Actor, action: ModAction, fx: RoomEffects, now = Date.now()): Promise<ModResult> {
    // To anyone who may not read a private room, every action answers as a room that does not exist.
    if (!this.canRead(actor.userId, actor.admin)) return { ok: false, code: "not_found", message: `No room ${fx.roomId}.` };
    // A banned user acts on nothing in the room (a banned moderator cannot unban themself, nor report).
    if (!actor.admin && action.type !== "info") {
      const ban = this.banOf(actor.userId, now);
      if (ban) return { ok: false, code: "banned", message: banRefusal(ban).message };
    }
    const role = this.roleOf(actor.userId, actor.admin);
    const isMod = RANK[role] >= RANK.moderator;
    const needMod = (): ModResult | null => (isMod ? null : forbidden("Only the room's moderators may do this."));
    const needOwner = (): ModResult | null => (RANK[role] >= RANK.owner ? null : forbidden("Only the room's owner (or an admin) may do this."));
    const system = (event: Extract<ServerMessage, { type: "system" }>["event"], userId: string, extra: { reason?: string; until?: number | null; messageId?: string } = {}) =>
      fx.publish({ type: "system", roomId: fx.roomId, event, userId, name: fx.nameOf(userId), at: now, by: actor.userId, ...strip(extra) });

    switch (action.type) {
      case "info":
        return { ok: true, data: this.stateFor(actor.userId, actor.admin, fx.message) };

      case "moderator": {
        const refused = needOwner() ?? this.notOwnerTarget(action.userId);
        if (refused) return refused;
        if (action.on) {
          if (this.moderators.has(action.userId)) return { ok: true };
          this.sql.exec("INSERT OR REPLACE INTO mod_roles (user_id, role, granted_by, granted_at) VALUES (?, 'moderator', ?, ?)", action.userId, actor.userId, now);
          this.moderators.add(action.userId);
          // A private room's moderator is one of its members.
          if (this.settings.visibility === "private") this.addMember(action.userId, actor.userId, now);
        } else {
          if (!this.moderators.has(action.userId)) return { ok: true };
          this.sql.exec("DELETE FROM mod_roles WHERE user_id = ?", action.userId);
          this.moderators.delete(action.userId);
        }
        this.audit(now, actor.userId, action.on ? "moderator_added" : "moderator_removed", action.userId, null, null);
        system(action.on ? "moderator_added" : "moderator_removed", action.userId);
        return { ok: true };
      }

      case "ban": {
        const refused = needMod() ?? this.canSanction(actor, role, action.userId);
        if (refused) return refused;
        const until = action.durationSec === undefined ? null : now + action.durationSec * 1000;
        const ban: Sanction = { userId: action.userId, until, reason: action.reason ?? null, by: actor.userId, at: now };
        this.sql.exec("INSERT OR REPLACE INTO mod_bans (user_id, until, reason, by, at) VALUES (?, ?, ?, ?, ?)", ban.userId, ban.until, ban.reason, ban.by, ban.at);
        this.bans.set(ban.userId, ban);
        this.audit(now, actor.userId, "ban", action.userId, ban.reason, { until });
        system("ban", action.userId, { reason: action.reason, until });
        await fx.closeUser(action.userId, banRefusal(ban), "banned");
        return { ok: true, data: { ban } };
      }

      case "unban": {
        const refused = needMod();
        if (refused) return refused;
        const had = this.bans.delete(action.userId);
        this.sql.exec("DELETE FROM mod_bans WHERE user_id = ?", action.userId);
        if (!had) return { ok: true };
        this.audit(now, actor.userId, "unban", action.userId, null, null);
        system("unban", action.userId);
        return { ok: true };
      }

      case "bans": {
        const refused = needMod();
        if (refused) return refused;
        const bans = [...this.bans.keys()].map((u) => this.banOf(u, now)).filter((b): b is Sanction => b !== null);
        return { ok: true, data: { bans } };
      }

      case "mute": {
        const refused = needMod() ?? this.canSanction(actor, role, action.userId);
        if (refused) return refused;
        const mute: Sanction = { userId: action.userId, until: now + action.durationSec * 1000, reason: action.reason ?? null, by: actor.userId, at: now };
        this.sql.exec("INSERT OR REPLACE INTO mod_mutes (user_id, until, reason, by, at) VALUES (?, ?, ?, ?, ?)", mute.userId, mute.until, mute.reason, mute.by, mute.at);
        this.mutes.set(mute.userId, mute);
        this.audit(now, actor.userId, "mute", action.userId, mute.reason, { until: mute.until });
        system("mute", action.userId, { reason: action.reason, until: mute.until });
        return { ok: true, data: { mute } };
      }

      case "unmute": {
        const refused = needMod();
        if (refused) return refused;
        const had = this.mutes.delete(action.userId);
        this.sql.exec("DELETE FROM mod_mutes WHERE user_id = ?", action.userId);
        if (!had) return { ok: true };
        this.audit(now, actor.userId, "unmute", action.userId, null, null);
        system("unmute", action.userId);
        return { ok: true };
      }

      case "kick": {
        const refused = needMod() ?? this.canSanction(actor, role, action.userId);
        if (refused) return refused;
        this.audit(now, actor.userId, "kick", action.userId, action.reason ?? null, null);
        system("kick", action.userId, { reason: action.reason });
        const closed = await fx.closeUser(
          action.userId,
          { code: "forbidden", message: `Removed from the room by a moderator${action.reason ? `: ${action.reason}` : ""}. You may join again.` },
          "kicked",
        );
        return { ok: true, data: { closed } };
      }

      case "pin": {
        const refused = needMod();
        if (refused) return refused;
        if (action.on) {
          if (!fx.message(action.messageId)) return { ok: false, code: "not_found", message: `No message ${action.messageId} in this room.` };
          const exists = this.sql.exec("SELECT 1 FROM mod_pins WHERE message_id = ?", action.messageId).toArray().length > 0;
          if (exists) return { ok: true };
          const n = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM mod_pins").one().n;
          if (n >= PINS_MAX) return { ok: false, code: "conflict", message: `At most ${PINS_MAX} pinned messages; unpin one first.` };
          this.sql.exec("INSERT INTO mod_pins (message_id, pinned_by, pinned_at) VALUES (?, ?, ?)", action.messageId, actor.userId, now);
        } else {
          const { rowsWritten } = this.sql.exec("DELETE FROM mod_pins WHERE message_id = ?", action.messageId);
          if (rowsWritten === 0) return { ok: true };
        }
        const author = fx.message(action.messageId)?.userId ?? actor.userId;
        this.audit(now, actor.userId, action.on ? "pin" : "unpin", author, null, { messageId: action.messageId });
        system(action.on ? "pin" : "unpin", author, { messageId: action.messageId });
        return { ok: true };
      }

      case "filter": {
        const refused = needMod();
        if (refused) return refused;
        const words = [...new Set(action.words.map(normalizeWord).filter((w) => w.length > 0 && w.length <= FILTER_WORD_MAX))].sort();
        if (words.length > FILTER_WORDS_MAX) return { ok: false, code: "bad_request", message: `At most ${FILTER_WORDS_MAX} words.` };
        this.sql.exec("DELETE FROM mod_filter_words");
        for (const w of words) this.sql.exec("INSERT INTO mod_filter_words (word) VALUES (?)", w);
        this.roomWords = words;
        this.filter = compileFilter([...this.deploymentWords, ...words]);
        // The words themselves are not audited (nor broadcast): the log would become the list.
        this.audit(now, actor.userId, "filter", null, null, { words: words.length });
        return { ok: true, data: { words } };
      }

      case "settings": {
        const directory = action.name !== undefined || action.description !== undefined || action.category !== undefined;
        const refused = (directory ? needOwner() : null) ?? needMod();
        if (refused) return refused;
        const changed: Record<string, unknown> = {};
        if (action.slowModeSec !== undefined && action.slowModeSec !== this.settings.slowModeSec) {
          this.setMeta("mod_slow_mode_sec", String(action.slowModeSec));
          this.settings.slowModeSec = action.slowModeSec;
          // Sends made while slow mode was off were not clocked: the next ones read the log again.
          this.lastSend.clear();
          changed.slowModeSec = action.slowModeSec;
        }
        if (action.frozen !== undefined && action.frozen !== this.settings.frozen) {
          this.setMeta("mod_frozen", action.frozen ? "1" : "0");
          this.settings.frozen = action.frozen;
          changed.frozen = action.frozen;
        }
        for (const k of ["name", "description", "category"] as const) if (action[k] !== undefined) changed[k] = action[k];
        if (Object.keys(changed).length > 0) {
          this.audit(now, actor.userId, "settings", null, null, changed);
          system("settings", actor.userId);
        }
        return { ok: true, data: { settings: { ...this.settings } } };
      }

      case "member": {
        if (this.settings.visibility !== "private") return { ok: false, code: "bad_request", message: "Membership applies to private rooms only." };
        const self = action.userId === actor.userId;
        if (action.on) {
          const refused = needMod();
          if (refused) return refused;
          if (this.members.has(action.userId)) return { ok: true };
          this.addMember(action.userId, actor.userId, now);
        } else {
          // A member may leave; removing someone else takes a moderator.
          const refused = self ? null : needMod();
          if (refused) return refused;
          if (action.userId === this.owner) return forbidden("The owner cannot leave or be removed from their room.");
          if (!self && this.moderators.has(action.userId) && RANK[role] < RANK.owner) return forbidden("Only the owner (or an admin) may remove a moderator.");
          if (!this.members.has(action.userId)) return { ok: true };
          this.sql.exec("DELETE FROM mod_members WHERE user_id = ?", action.userId);
          this.members.delete(action.userId);
          if (this.moderators.delete(action.userId)) this.sql.exec("DELETE FROM mod_roles WHERE user_id = ?", action.userId);
        }
        this.audit(now, actor.userId, action.on ? "member_added" : "member_removed", action.userId, null, null);
        system(action.on ? "member_added" : "member_removed", action.userId);
        if (!action.on) await fx.closeUser(action.userId, { code: "not_found", message: `No room ${fx.roomId}.` }, "removed from the room");
        return { ok: true };
      }

      case "members": {
        if (this.settings.visibility !== "private") return { ok: false, code: "bad_request", message: "Membership applies to private rooms only." };
        const members = this.sql
          .exec<{ user_id: string; added_at: number }>("SELECT user_id, added_at FROM mod_members ORDER BY added_at, user_id")
          .toArray()
          .map((r) => ({ userId: r.user_id, addedAt: r.added_at, role: this.roleOf(r.user_id) }));
        return { ok: true, data: { members } };
      }

      case "report": {
        const message = fx.message(action.messageId);
        if (!message) return { ok: false, code: "not_found", message: `No message ${action.messageId} in this room.` };
        const { rowsWritten } = this.sql.exec(
          "INSERT INTO mod_reports (message_id, reporter, reason, at) VALUES (?, ?, ?, ?) ON CONFLICT (message_id, reporter) DO NOTHING",
          action.messageId,
          actor.userId,
          action.reason,
          now,
        );
        if (rowsWritten === 0) return { ok: false, code: "conflict", message: "You have already reported this message." };
        const id = this.sql.exec<{ id: number }>("SELECT id FROM mod_reports WHERE message_id = ? AND reporter = ?", action.messageId, actor.userId).one().id;
        this.audit(now, actor.userId, "report", message.userId, action.reason, { messageId: action.messageId, reportId: id });
        return { ok: true, data: { id } };
      }

      case "reports": {
        const refused = needMod();
        if (refused) return refused;
        const before = action.before ?? Number.MAX_SAFE_INTEGER;
        const rows = this.sql
          .exec<ReportRow>(
            action.status === "all"
              ? "SELECT * FROM mod_reports WHERE id < ? ORDER BY id DESC LIMIT ?"
              : "SELECT * FROM mod_reports WHERE id < ? AND status = ? ORDER BY id DESC LIMIT ?",
            ...(action.status === "all" ? [before, action.limit] : [before, action.status, action.limit]),
          )
          .toArray();
        const reports: Report[] = rows.map((r) => ({
          id: r.id,
          messageId: r.message_id,
          reporter: r.reporter,
          reason: r.reason,
          at: r.at,
          status: r.status === "resolved" ? "resolved" : "open",
          resolvedBy: r.resolved_by,
          resolvedAt: r.resolved_at,
          resolution: r.resolution,
          message: fx.message(r.message_id),
        }));
        return { ok: true, data: { reports, nextBefore: rows.length === action.limit ? (rows.at(-1)?.id ?? null) : null } };
      }

      case "resolve_report": {
        const refused = needMod();
        if (refused) return refused;
        const row = this.sql.exec<ReportRow>("SELECT * FROM mod_reports WHERE id = ?", action.reportId).toArray()[0];
        if (!row) return { ok: false, code: "not_found", message: `No report ${action.reportId} in this room.` };
        if (row.status === "resolved") return { ok: true };
        this.sql.exec("UPDATE mod_reports SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? WHERE id = ?", actor.userId, now, action.resolution, action.reportId);
        this.audit(now, actor.userId, "resolve_report", row.reporter, action.resolution, { reportId: row.id, messageId: row.message_id });
        return { ok: true };
      }

      case "audit": {
        const refused = needMod();
        if (refused) return refused;
        const rows = this.sql
          .exec<AuditRow>("SELECT * FROM mod_audit WHERE id < ? ORDER BY id DESC LIMIT ?", action.before ?? Number.MAX_SAFE_INTEGER, action.limit)
          .toArray();
        const entries: AuditEntry[] = rows.map((r) => ({
          id: r.id,
          at: r.at,
          actor: r.actor,
          action: r.action,
          target: r.target,
          reason: r.reason,
          detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
        }));
        return { ok: true, data: { entries, nextBefore: rows.length === action.limit ? (rows.at(-1)?.id ?? null) : null } };
      }

      case "delete_room": {
        const refused = needOwner();
        if (refused) return refused;
        return { ok: true };
      }
    }
  }

  // ---------------------------------------------------------------- helpers

  /** A user with a role may not be sanctioned by anyone of equal or lower rank (and never oneself). */
  private canSanction(actor: Actor, role: Role, target: string): ModResult | null {
    if (target === actor.userId) return { ok: false, code: "bad_request", message: "You cannot do this to yourself." };
    const targetRole = this.roleOf(target);
    if (RANK[targetRole] >= RANK[role]) return forbidden(`A ${role} cannot act on the room's ${targetRole}.`);
    return null;
  }

  private notOwnerTarget(target: string): ModResult | null {
    return target === this.owner ? forbidden("The owner's role cannot be changed.") : null;
  }

  private addMember(userId: string, by: string, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO mod_members (user_id, added_by, added_at) VALUES (?, ?, ?)", userId, by, now);
    this.members.add(userId);
  }

  private pinned(message: (id: string) => RoomMessage | null): RoomMessage[] {
    const out: RoomMessage[] = [];
    for (const r of this.sql.exec<{ message_id: string }>("SELECT message_id FROM mod_pins ORDER BY pinned_at DESC, message_id")) {
      const m = message(r.message_id);
      if (m) out.push(m);
    }
    return out;
  }

  private current(map: Map<string, Sanction>, table: "mod_bans" | "mod_mutes", userId: string, now: number): Sanction | null {
    const s = map.get(userId);
    if (!s) return null;
    if (s.until !== null && s.until <= now) {
      // Expired: lifted by time, without anyone's action (no audit entry: the entry of the action says until when).
      map.delete(userId);
      this.sql.exec(`DELETE FROM ${table} WHERE user_id = ? AND until <= ?`, userId, now);
      return null;
    }
    return s;
  }

  private lastSendOf(userId: string): number | null {
    const known = this.lastSend.get(userId);
    if (known !== undefined) return known;
    const t = this.sql.exec<{ t: number | null }>("SELECT max(created_at) AS t FROM messages WHERE user_id = ?", userId).one().t;
    this.lastSend.set(userId, t ?? 0);
    return t;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }

  private audit(at: number, actor: string, action: string, target: string | null, reason: string | null, detail: Record<string, unknown> | null): void {
    this.sql.exec(
      "INSERT INTO mod_audit (at, actor, action, target, reason, detail) VALUES (?, ?, ?, ?, ?, ?)",
      at,
      actor,
      action,
      target,
      reason,
      detail === null ? null : JSON.stringify(detail),
    );
  }
}

type SanctionRow = { user_id: string; until: number | null; reason: string | null; by: string; at: number };
type ReportRow = {
  id: number;
  message_id: string;
  reporter: string;
  reason: string;
  at: number;
  status: string;
  resolved_by: string | null;
  resolved_at: number | null;
  resolution: string | null;
};
type AuditRow = { id: number; at: number; actor: string; action: string; target: string | null; reason: string | null; detail: string | null };

function toSanction(r: SanctionRow): Sanction {
  return { userId: r.user_id, until: r.until, reason: r.reason, by: r.by, at: r.at };
}

function banRefusal(ban: Sanction): Refusal {
  const when = ban.until === null ? "" : ` until ${new Date(ban.until).toISOString()}`;
  return { code: "banned", message: `You are banned from this room${when}${ban.reason ? `: ${ban.reason}` : ""}.`, until: ban.until };
}

function forbidden(message: string): ModResult {
  return { ok: false, code: "forbidden", message };
}

function strip<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
