/**
 * The user's status (chosen, online/offline, last seen) and who watches it (`subscribers`), and the
 * statuses the user watches (`subscriptions`, explicit or automatic): publishing changes in order,
 * snapshots for new sockets, and the RPCs between inboxes.
 */
import { findUsers } from "../../db/queries";
import type { ClientMessage, ServerFrameMessage } from "../../protocol";
import { mapBounded } from "../bounded";
import { FrameError } from "../socket-host";
import { HIDDEN, publicView, sameView } from "../status";
import type { ChosenStatus, OwnStatus, StatusView } from "../status";
import { inboxStub } from "../stubs";
import { numVar } from "../../env";
import type { InboxContext, InboxSession } from "./context";
import { BATCH_MAX, RPC_CONCURRENCY, SUBSCRIBERS_MAX } from "./context";

/** The user's status and the subscriptions both ways. */
export class InboxStatus {
  /**
   * The statuses of the users this one watches, as last pushed to it or read from them: in memory
   * only. Writing each push down cost a durable write per subscriber per status change, half of a
   * change's cost under `wrangler dev` (docs/benchmarks.md); what the memory loses when the object
   * goes away is read again from the watched inboxes themselves (`refreshPeers`) before a new socket
   * is given its snapshot.
   */
  private readonly peers = new Map<string, StatusView>();
  /** True once `peers` was filled from the watched inboxes in this object's lifetime (pushes keep it current since). */
  private peersComplete = false;
  /** The read of every watched status under way, shared by the sockets that wait for it. */
  private refreshing: Promise<void> | null = null;
  /** Users pushed while that read is under way: their push is newer than what the read returns. */
  private pushedDuringRefresh: Set<string> | null = null;

  constructor(private readonly c: InboxContext) {}

  async onPresence(ws: WebSocket, msg: Extract<ClientMessage, { type: "presence" }>): Promise<void> {
    // Every frame already refreshed the socket's `lastSeenAt`: a bare `presence` is a heartbeat.
    if (msg.status !== undefined) {
      const own = this.ownStatus();
      if (own.chosen !== msg.status) {
        const now = Date.now();
        // Going invisible looks like going offline now; the time must not later reveal activity.
        const lastSeen = msg.status === "invisible" ? now : own.lastSeen;
        this.saveOwnStatus({ chosen: msg.status, lastSeen });
        await this.publishStatus();
      }
    }
    if (msg.id !== undefined) this.c.host.send(ws, { type: "ack", id: msg.id });
  }

  async onSubscribe(
    ws: WebSocket,
    s: InboxSession,
    msg: Extract<ClientMessage, { type: "subscribe_presence" }>,
  ): Promise<void> {
    const asked = [...new Set(msg.userIds)].filter((id) => id !== s.userId);
    // Only real users are subscribed (and their inboxes touched); unknown ids read as offline, as in
    // GET /api/presence, so ids leak nothing. Subscribing is not the message hot path: D1 is fine here.
    const existing = await findUsers(this.c.env, asked);
    const ids = asked.filter((id) => existing.has(id));
    // Only subscriptions the user asked for count here: automatic ones (DM peers, strangers' first
    // messages among them) are bounded on their own and can never take this quota away.
    const known = new Set(
      this.c.sql.exec<{ user_id: string }>("SELECT user_id FROM subscriptions WHERE auto = 0").toArray().map((r) => r.user_id),
    );
    // An automatic subscription asked for explicitly becomes explicit, and counts from then on.
    const added = ids.filter((id) => !known.has(id));
    const limit = this.subscribeLimit();
    if (known.size + added.length > limit) {
      throw new FrameError(
        "bad_request",
        `userIds: subscribing to ${added.length} more would exceed the limit of ${limit} (now ${known.size})`,
      );
    }
    const now = Date.now();
    this.c.ctx.storage.transactionSync(() => {
      for (const id of added) this.addSubscription(id, false, now);
    });
    const frames = await mapBounded(asked, RPC_CONCURRENCY, async (id): Promise<ServerFrameMessage> => {
      let view: StatusView = HIDDEN;
      if (existing.has(id) && !this.c.blocks.isBlocking(id)) {
        try {
          const res = await inboxStub(this.c.env, id).addSubscriber(s.userId);
          view = res.view;
          // Refused (that user has SUBSCRIBERS_MAX watchers): a snapshot only, and no stored row
          // that would count against the limit while never being updated.
          if (res.subscribed) this.cacheStatus(id, view);
          else this.c.store.removeSubscription(id);
        } catch (err) {
          this.c.host.log("subscribe", err, s.connId);
        }
      }
      return { type: "presence", userId: id, status: view.status, lastSeen: view.lastSeen };
    });
    for (let i = 0; i < frames.length; i += BATCH_MAX) {
      this.c.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
    }
    this.c.host.send(ws, { type: "ack", id: msg.id });
  }

  async onUnsubscribe(
    ws: WebSocket,
    s: InboxSession,
    msg: Extract<ClientMessage, { type: "unsubscribe_presence" }>,
  ): Promise<void> {
    // Only inboxes this one actually watches are told: an RPC to a made-up id would create an object.
    const ids = [...new Set(msg.userIds)].filter((id) => this.isSubscribedTo(id));
    for (const id of ids) this.c.store.removeSubscription(id);
    await mapBounded(ids, RPC_CONCURRENCY, async (id) => {
      try {
        await inboxStub(this.c.env, id).removeSubscriber(s.userId);
      } catch (err) {
        // Its next push is answered "no longer subscribed" and drops the row there.
        this.c.host.log("unsubscribe", err, s.connId);
      }
    });
    this.c.host.send(ws, { type: "ack", id: msg.id });
  }

  /**
   * Records `subscriberId` as watching this user's status, unless this user already has SUBSCRIBERS_MAX
   * watchers; returns the status that subscriber may see either way, and whether it was recorded.
   */
  async addSubscriber(subscriberId: string): Promise<{ view: StatusView; subscribed: boolean }> {
    const subscribed = this.canAddSubscriber(subscriberId);
    if (subscribed) this.c.store.addSubscriberRow(subscriberId, Date.now());
    return { view: this.viewFor(subscriberId), subscribed };
  }

  /** Forgets a subscriber. */
  async removeSubscriber(subscriberId: string): Promise<void> {
    this.c.store.removeSubscriberRow(subscriberId);
  }

  /** This user's status as `viewerId` may see it. */
  async statusFor(viewerId: string): Promise<StatusView> {
    return this.viewFor(viewerId);
  }

  /**
   * A watched user's status changed. Returns false when this inbox no longer subscribes,
   * so the sender drops it from its subscribers.
   */
  async presenceChanged(userId: string, view: StatusView): Promise<boolean> {
    if (!this.isSubscribedTo(userId)) return false;
    // A user this one blocks stays hidden (it was shown offline when blocked), whatever it reports.
    if (!this.c.blocks.isBlocking(userId)) this.notePeerStatus(userId, view);
    return true;
  }

  /** Statuses of `userIds` as this user may see them, in the order asked. */
  async presenceOf(userIds: string[]): Promise<{ userId: string; status: StatusView["status"]; lastSeen: number | null }[]> {
    // Unknown ids read as offline without waking (or creating) an inbox for them.
    const existing = await findUsers(this.c.env, userIds);
    return mapBounded(userIds, RPC_CONCURRENCY, async (userId) => {
      let view: StatusView = HIDDEN;
      if (userId === this.c.owner) view = publicView(this.ownStatus(), this.c.openSockets().length > 0);
      else if (existing.has(userId) && !this.c.blocks.isBlocking(userId)) {
        try {
          view = await inboxStub(this.c.env, userId).statusFor(this.c.owner);
        } catch (err) {
          this.c.host.log("presence lookup", err);
        }
      }
      return { userId, status: view.status, lastSeen: view.lastSeen };
    });
  }

  ownStatus(): OwnStatus {
    const raw = this.c.store.meta("status");
    return raw ? (JSON.parse(raw) as OwnStatus) : { chosen: "online", lastSeen: null };
  }

  saveOwnStatus(own: { chosen: ChosenStatus; lastSeen: number | null }): void {
    this.c.store.setMeta("status", JSON.stringify(own));
  }

  setConnected(on: boolean): void {
    this.c.store.setMeta("connected", on ? "1" : "0");
  }

  /** The status `viewerId` may see: hidden entirely from a user this one blocks. */
  viewFor(viewerId: string): StatusView {
    if (this.c.blocks.isBlocking(viewerId)) return HIDDEN;
    return publicView(this.ownStatus(), this.c.openSockets().length > 0);
  }

  /** The last socket went (closed or swept): offline with the time, told to subscribers. */
  async wentOffline(now: number): Promise<void> {
    if (this.c.store.meta("connected") !== "1") return;
    this.setConnected(false);
    const own = this.ownStatus();
    // While invisible the user already looks offline; a fresh time would reveal the session.
    if (own.chosen !== "invisible") this.saveOwnStatus({ ...own, lastSeen: now });
    await this.publishStatus();
  }

  /**
   * Pushes the public status to every subscriber (by RPC) when it changed since the last push.
   * Publishes run one after another: two overlapping fan-outs could reach a subscriber out of
   * order (online after offline) and leave it showing the wrong status.
   */
  publishStatus(): Promise<void> {
    return this.c.serialize("presence", () => this.publishNow());
  }

  async publishNow(): Promise<void> {
    const view = publicView(this.ownStatus(), this.c.openSockets().length > 0);
    const lastRaw = this.c.store.meta("published");
    if (sameView(lastRaw ? (JSON.parse(lastRaw) as StatusView) : null, view)) return;
    this.c.store.setMeta("published", JSON.stringify(view));
    const subscribers = this.c.sql
      .exec<{ user_id: string }>("SELECT user_id FROM subscribers WHERE user_id NOT IN (SELECT user_id FROM blocks)")
      .toArray();
    // At most SUBSCRIBERS_MAX RPCs, RPC_CONCURRENCY in flight at a time (`tell` never rejects).
    await mapBounded(subscribers, RPC_CONCURRENCY, (r) => this.tell(r.user_id, view));
  }

  /** Sends one status to one subscriber's inbox; forgets the subscriber when it no longer listens. */
  async tell(subscriberId: string, view: StatusView): Promise<void> {
    try {
      const still = await inboxStub(this.c.env, subscriberId).presenceChanged(this.c.owner, view);
      if (!still) this.c.store.removeSubscriberRow(subscriberId);
    } catch (err) {
      this.c.host.log("presence fan-out", err);
    }
  }

  /** Records a watched user's status and shows it on the user's sockets. */
  notePeerStatus(userId: string, view: StatusView): void {
    this.c.broadcast({ type: "presence", userId, status: view.status, lastSeen: view.lastSeen });
    this.cacheStatus(userId, view);
  }

  /**
   * Gives a new socket the status of everyone the user watches (DM peers included): from memory,
   * kept current by the watched inboxes' pushes, once this object has read them all in its lifetime
   * (`refreshPeers`; after a wake-up, one RPC per watched user, shared by the sockets that come
   * meanwhile). `subscribe_presence` asks the watched inboxes afresh.
   */
  async sendWatchedSnapshot(ws: WebSocket): Promise<void> {
    const ids = this.c.sql.exec<{ user_id: string }>("SELECT user_id FROM subscriptions ORDER BY user_id").toArray().map((r) => r.user_id);
    if (!this.peersComplete) await this.refreshPeers(ids);
    const frames: ServerFrameMessage[] = [];
    for (const userId of ids) {
      const view = this.peers.get(userId);
      if (!view) continue;
      const hidden = this.c.blocks.isBlocking(userId);
      frames.push({ type: "presence", userId, status: hidden ? "offline" : view.status, lastSeen: hidden ? null : view.lastSeen });
    }
    for (let i = 0; i < frames.length; i += BATCH_MAX) this.c.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
  }

  /** Reads the status of every watched user from their own inbox (RPC_CONCURRENCY at a time). */
  private refreshPeers(ids: readonly string[]): Promise<void> {
    this.refreshing ??= (async () => {
      const pushed = new Set<string>();
      this.pushedDuringRefresh = pushed;
      let complete = true;
      try {
        const views = await mapBounded(ids, RPC_CONCURRENCY, async (id): Promise<StatusView | null> => {
          try {
            return await inboxStub(this.c.env, id).statusFor(this.c.owner);
          } catch (err) {
            this.c.host.log("presence snapshot", err);
            return null;
          }
        });
        ids.forEach((id, i) => {
          const view = views[i];
          if (view === null) complete = false;
          // A push that came meanwhile is newer than what was read.
          else if (!pushed.has(id)) this.peers.set(id, view);
        });
      } finally {
        this.pushedDuringRefresh = null;
        this.refreshing = null;
      }
      // A watched inbox that did not answer: the next socket asks again.
      if (complete) this.peersComplete = true;
    })();
    return this.refreshing;
  }

  /** Remembers a watched user's status (memory only, see `peers`). */
  cacheStatus(userId: string, view: StatusView): void {
    this.peers.set(userId, view);
    this.pushedDuringRefresh?.add(userId);
  }

  isSubscribedTo(userId: string): boolean {
    return this.c.sql.exec("SELECT 1 FROM subscriptions WHERE user_id = ?", userId).toArray().length > 0;
  }

  hasSubscriber(userId: string): boolean {
    return this.c.sql.exec("SELECT 1 FROM subscribers WHERE user_id = ?", userId).toArray().length > 0;
  }

  /** A watcher already recorded, or room for one more: bounds the fan-out of every status change. */
  canAddSubscriber(userId: string): boolean {
    if (this.hasSubscriber(userId)) return true;
    return this.c.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscribers").one().n < SUBSCRIBERS_MAX;
  }

  /**
   * Records a subscription. An explicit one (`subscribe_presence`) replaces an automatic one for the
   * same user. An automatic one (a DM peer, on first contact: anyone can cause one by writing) never
   * replaces an explicit one and never counts against PRESENCE_SUBSCRIBE_LIMIT: automatic ones have a
   * bound of their own (the same number), and past it the one whose conversation has been quiet the
   * longest is dropped. Its inbox is not told: its next push is answered "no longer subscribed".
   */
  addSubscription(userId: string, auto: boolean, now: number): void {
    if (!auto) {
      this.c.sql.exec(
        "INSERT INTO subscriptions (user_id, auto, created_at) VALUES (?, 0, ?) ON CONFLICT (user_id) DO UPDATE SET auto = 0",
        userId,
        now,
      );
      return;
    }
    const { rowsWritten } = this.c.sql.exec("INSERT OR IGNORE INTO subscriptions (user_id, auto, created_at) VALUES (?, 1, ?)", userId, now);
    if (rowsWritten === 0) return;
    const n = this.c.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscriptions WHERE auto = 1").one().n;
    const excess = n - this.subscribeLimit();
    if (excess <= 0) return;
    this.c.sql.exec(
      `DELETE FROM subscriptions WHERE user_id IN (
         SELECT s.user_id FROM subscriptions s LEFT JOIN conversations c ON c.peer_id = s.user_id
         WHERE s.auto = 1 AND s.user_id <> ?
         ORDER BY COALESCE(c.last_at, s.created_at) ASC, s.created_at ASC LIMIT ?)`,
      userId,
      excess,
    );
  }

  subscribeLimit(): number {
    return numVar(this.c.env.PRESENCE_SUBSCRIBE_LIMIT, 500);
  }
}
