/**
 * The chat screen: rooms by category and DMs on the left, the open conversation in the middle, who is
 * in the room on the right. Everything live goes through the SDK (`@edge-chat/client`): the room and
 * inbox sockets, sends with their acks, and the REST helpers. The URL hash names the open
 * conversation (`#room/general`, `#dm/<conversationId>`), so reload and the back button work.
 */
import {
  ChatClient,
  LocalStorageOutboxStore,
  applyChange,
  type Change,
  type ChatError,
  type Conversation,
  type ConnectionState,
  type DmMessage,
  type Room,
  type RoomInfo,
  type RoomMessage,
  type Status,
  type Suggestions,
} from "@edge-chat/client";
import { h, icon, replace } from "./dom";
import { colorFor, initials, sizeOf, typingLine, userIdFor } from "./format";
import { MediaView } from "./media";
import { MessageList, type ListMessage } from "./message-list";
import { tokenProvider, type Session } from "./session";

const ROOM_PAGE = 40;
const TYPING_IDLE_MS = 3000;
const TYPING_EXPIRE_MS = 6000;
const ROOMS_REFRESH_MS = 15_000;
const CATEGORY_ORDER = ["general", "local", "tech", "science", "gaming", "sports", "music", "arts", "news", "other"];

const CONNECTION_TEXT: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  closed: "Disconnected",
};

/** The open conversation and what belongs to it; torn down when another opens. */
interface View {
  key: string;
  list: MessageList;
  typingEl: HTMLElement;
  typers: Map<string, { name: string; timer: ReturnType<typeof setTimeout> }>;
  dispose(): void;
  send(text: string, mediaIds?: string[]): void;
  typing(on: boolean): void;
}

export class App {
  readonly chat: ChatClient;
  private readonly token: () => Promise<string>;
  private readonly el: HTMLElement;
  private readonly media: MediaView;
  private connection: ConnectionState = "connecting";
  private rooms: RoomInfo[] = [];
  private conversations = new Map<string, Conversation>();
  private blocked = new Set<string>();
  private statuses = new Map<string, Status>();
  private names = new Map<string, string>();
  private view: View | null = null;
  private room: Room | null = null;
  private present: { userId: string; name: string }[] = [];
  private nearby: Suggestions | null = null;
  private nearbyBusy = false;
  private showMembers = false;
  private adding: "room" | "dm" | null = null;
  private timers: ReturnType<typeof setInterval>[] = [];

  // Parts of the page redrawn on their own.
  private connEl = h("span", { class: "conn", "data-state": "connecting", "data-testid": "connection" }, "Connecting…");
  private listsEl = h("nav", { class: "lists", "aria-label": "Conversations" });
  private mainEl = h("main", { class: "main" });
  private membersEl = h("aside", { class: "members", "aria-label": "People in this room" });
  private bannerEl = h("div", { class: "banner", role: "status", hidden: true });

  constructor(
    private readonly session: Session,
    root: HTMLElement,
    private readonly signOut: () => void,
  ) {
    this.token = tokenProvider(session);
    // Queued sends are kept in localStorage until acked: typed offline, they survive a reload too.
    this.chat = new ChatClient({ baseUrl: location.origin, token: this.token, store: new LocalStorageOutboxStore(`edge-chat:outbox:${session.userId}`) });
    this.media = new MediaView((url) => this.loadMedia(url));
    this.names.set(session.userId, session.name);
    this.el = h(
      "div",
      { class: "app", "data-view": "list" },
      h(
        "aside",
        { class: "sidebar" },
        h(
          "header",
          { class: "me" },
          this.avatar(session.userId, session.name),
          h("div", { class: "who" }, h("div", { class: "name", "data-testid": "me" }, session.name), this.connEl),
          h("button", { class: "icon-btn", title: "Sign out", "aria-label": "Sign out", onclick: () => this.signOut() }, icon("logout")),
        ),
        this.listsEl,
      ),
      this.mainEl,
      this.membersEl,
    );
    replace(root, this.el);
  }

  /** Connects the inbox, loads the lists and opens what the URL names. */
  async start(): Promise<void> {
    this.chat.on("connection", (s) => this.setConnection(s));
    const inbox = this.chat.inbox();
    inbox.on("dm", (m) => this.onDm(m));
    inbox.on("notification", (n) => {
      const c = this.conversations.get(n.conversationId);
      if (c && this.view?.key !== `dm/${n.conversationId}`) {
        c.unread = n.unread;
        this.renderLists();
      }
    });
    inbox.on("read", (r) => {
      const c = this.conversations.get(r.conversationId);
      if (!c) return;
      if (r.userId !== this.session.userId) {
        c.peerReadSeq = Math.max(c.peerReadSeq, r.seq);
        if (this.view?.key === `dm/${r.conversationId}`) this.dmList?.seen(c.peerReadSeq);
        return;
      }
      // Read on another device or tab of this user: the badge goes here too.
      c.readSeq = Math.max(c.readSeq, r.seq);
      if (c.readSeq >= c.lastSeq) c.unread = 0;
      else void this.loadConversations();
      this.renderLists();
    });
    inbox.on("presence", (p) => {
      this.statuses.set(p.userId, p.status);
      this.renderLists();
      this.refreshDmHead();
    });
    inbox.on("typing", (t) => {
      if (t.conversationId && this.view?.key === `dm/${t.conversationId}`) this.showTyping(t.userId, t.on);
    });
    inbox.on("suggestion", () => void this.loadNearby());
    window.addEventListener("hashchange", () => void this.route());
    this.renderLists();
    await Promise.all([this.loadRooms(), this.loadConversations(), this.loadBlocks()]);
    this.timers.push(setInterval(() => void this.loadRooms(), ROOMS_REFRESH_MS));
    await this.route();
  }

  /** Closes every socket. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.view?.dispose();
    await this.chat.close();
  }

  // ------------------------------------------------------------------ data

  private async loadRooms(): Promise<void> {
    try {
      const all: RoomInfo[] = [];
      let cursor: string | undefined;
      do {
        const page = await this.chat.rest.rooms({ limit: 100, cursor });
        all.push(...page.rooms);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && all.length < 500);
      this.rooms = all;
      this.renderLists();
    } catch {
      // Offline or the server restarting: the next refresh tries again.
    }
  }

  private async loadConversations(): Promise<void> {
    try {
      const { conversations } = await this.chat.rest.conversations({ limit: 100 });
      const open = this.view?.key.startsWith("dm/") ? this.view.key.slice(3) : null;
      for (const c of conversations) if (c.id === open) c.unread = 0; // being read right now
      this.conversations = new Map(conversations.map((c) => [c.id, c]));
      for (const c of conversations) this.names.set(c.peer.id, c.peer.name);
      const peers = conversations.map((c) => c.peer.id);
      if (peers.length) void this.chat.inbox().subscribe(peers).catch(() => undefined);
      this.renderLists();
    } catch {
      // As above.
    }
  }

  private loadMedia(url: string): Promise<Blob> {
    return (async () => {
      const token = await this.token();
      const res = await fetch(new URL(url, location.origin), { headers: { Authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`media ${res.status}`);
      return res.blob();
    })();
  }

  // ------------------------------------------------------------------ routing

  private navigate(hash: string): void {
    if (location.hash === `#${hash}`) void this.route();
    else location.hash = hash;
  }

  private async route(): Promise<void> {
    const [kind, id] = location.hash.replace(/^#/, "").split("/").map(decodeURIComponent);
    if (kind === "room" && id) return this.openRoom(id);
    if (kind === "dm" && id) return this.openDm(id);
    this.closeView();
    this.el.dataset.view = "list";
    replace(
      this.mainEl,
      h(
        "div",
        { class: "welcome" },
        h("div", {}, h("h2", {}, `Welcome, ${this.session.name}`), h("p", {}, "Pick a room on the left, or start a direct message from a room's member list.")),
      ),
    );
    this.renderMembers();
  }

  private closeView(): void {
    this.view?.dispose();
    this.view = null;
    this.room = null;
    this.present = [];
  }

  // ------------------------------------------------------------------ rooms

  private async openRoom(roomId: string): Promise<void> {
    if (this.view?.key === `room/${roomId}`) {
      this.el.dataset.view = "chat";
      return;
    }
    this.closeView();
    const info = this.rooms.find((r) => r.id === roomId);
    const room = this.chat.room(roomId);
    this.room = room;
    // A room still open in the background (its sends were settling) is already joined: no new state comes.
    this.present = room.present;
    // The messages shown, as stored: edits, deletions and reactions are folded into them (applyChange).
    const shown = new Map<string, RoomMessage>();
    const toItem = (m: RoomMessage): ListMessage => {
      this.names.set(m.userId, m.userName);
      shown.set(m.id, m);
      return {
        key: m.id,
        seq: m.seq,
        userId: m.userId,
        userName: m.userName,
        text: m.text,
        media: m.media,
        createdAt: m.createdAt,
        state: "sent",
        editedAt: m.editedAt,
        deleted: m.deleted,
        reactions: m.reactions,
        myReactions: m.myReactions,
      };
    };
    const refused = (what: string) => (err: ChatError) => {
      if (err.code !== "closed") alert(`Could not ${what}: ${err.message}`);
    };
    const list = new MessageList(
      this.session.userId,
      this.media,
      async (before) => {
        const page = await this.chat.rest.roomHistory(roomId, { before: before ?? undefined, limit: ROOM_PAGE });
        return { messages: page.messages.map(toItem), done: page.nextBefore === null };
      },
      {
        react: (id, emoji, on) => void room.react(id, emoji, on).catch(refused("react")),
        edit: (id, text) => void room.editMessage(id, text).catch(refused("edit the message")),
        remove: (id) => void room.deleteMessage(id).catch(refused("delete the message")),
      },
    );
    const changed = (id: string, change: Change) => {
      const m = shown.get(id);
      if (m) list.add(toItem(applyChange(m, change, this.session.userId)));
    };
    const sub = h("div", { class: "sub", "data-testid": "room-sub" }, info?.description ?? "");
    const updateHead = () => {
      const n = this.present.length;
      sub.textContent = `${n} online${info?.description ? ` · ${info.description}` : ""}`;
      this.renderLists();
    };
    const view = this.mountView(`room/${roomId}`, list, {
      title: info?.name ?? roomId,
      badge: h("div", { class: "hash" }, "#"),
      sub,
      send: (text, mediaIds) => this.sendRoom(room, list, text, mediaIds),
      typing: (on) => room.typing(on),
    });
    const offs = [
      room.on("state", (s) => {
        this.present = s.present;
        for (const p of s.present) this.names.set(p.userId, p.name);
        list.add(...s.messages.map(toItem));
        updateHead();
        this.renderMembers();
      }),
      room.on("message", (m) => {
        list.add(toItem(m));
        list.remove(`pending-${m.clientMsgId}`);
        if (m.userId !== this.session.userId) this.showTyping(m.userId, false);
      }),
      room.on("system", (s) => {
        this.present = room.present;
        this.names.set(s.userId, s.name);
        if (s.userId !== this.session.userId && (s.event === "join" || s.event === "leave")) list.system(`${s.name} ${s.event === "join" ? "joined" : "left"}`, s.at);
        else if (s.event !== "join" && s.event !== "leave") list.system(`${s.name}: ${s.event.replace("_", " ")}${s.reason ? ` (${s.reason})` : ""}`, s.at);
        updateHead();
        this.renderMembers();
      }),
      room.on("typing", (t) => this.showTyping(t.userId, t.on)),
      room.on("updated", (m) => changed(m.id, { type: "message_updated", message: m })),
      room.on("deleted", (d) => changed(d.messageId, d)),
      room.on("reaction", (r) => changed(r.messageId, r)),
      // Changes were missed beyond what resume replays: the newest page again, as it now is.
      room.on("reload", () => {
        void this.chat.rest.roomHistory(roomId, { limit: ROOM_PAGE }).then((p) => list.add(...p.messages.map(toItem)), () => {});
      }),
    ];
    view.dispose = chain(view.dispose, () => {
      for (const off of offs) off();
      this.release(room);
    });
    // Sends still queued (typed offline before a reload, or before switching rooms) show as pending.
    list.add(...room.pending().map((e) => this.pendingItem(e.clientMsgId, e.text, e.createdAt)));
    updateHead();
    this.renderMembers();
    await list.start();
  }

  /**
   * Leaves a room that is no longer shown, but only once its queued sends are acknowledged: leaving
   * rejects what is still queued, and a message typed offline must not be lost to a room switch.
   */
  private release(room: Room): void {
    const settled = () => room.pending().length === 0;
    if (settled()) return room.leave();
    const off = room.on("message", () => {
      if (!settled()) return;
      off();
      if (this.room !== room) room.leave();
    });
  }

  private pendingItem(clientMsgId: string, text: string | undefined, createdAt: number): ListMessage {
    return { key: `pending-${clientMsgId}`, seq: null, userId: this.session.userId, userName: this.session.name, text, createdAt, state: "pending" };
  }

  private sendRoom(room: Room, list: MessageList, text: string, mediaIds?: string[]): void {
    const clientMsgId = crypto.randomUUID();
    const key = `pending-${clientMsgId}`;
    const pending = this.pendingItem(clientMsgId, text, Date.now());
    list.add(pending);
    room.send({ text: text || undefined, mediaIds }, { clientMsgId }).then(
      (m) => {
        list.remove(key);
        if (!list.has(m.id)) list.add({ key: m.id, seq: m.seq, userId: m.userId, userName: m.userName, text: m.text, media: m.media, createdAt: m.createdAt, state: "sent" });
      },
      (err: ChatError) => {
        if (err.code === "closed") return; // Left the room: nothing to show any more.
        list.remove(key);
        list.add({ ...pending, key: `failed-${clientMsgId}`, state: "failed", code: err.code, error: err.message, retry: () => {
          list.remove(`failed-${clientMsgId}`);
          this.sendRoom(room, list, text, mediaIds);
        } });
      },
    );
  }

  // ------------------------------------------------------------------ DMs

  private async openDm(conversationId: string): Promise<void> {
    if (this.view?.key === `dm/${conversationId}`) {
      this.el.dataset.view = "chat";
      return;
    }
    this.closeView();
    let conv = this.conversations.get(conversationId);
    if (!conv) {
      await this.loadConversations();
      conv = this.conversations.get(conversationId);
    }
    if (!conv) {
      this.navigate("");
      return;
    }
    const peer = conv.peer;
    const inbox = this.chat.inbox();
    const toItem = (m: DmMessage): ListMessage => ({
      key: m.id,
      seq: m.seq,
      userId: m.from,
      userName: m.from === this.session.userId ? this.session.name : peer.name,
      text: m.text,
      media: m.media,
      createdAt: m.createdAt,
      state: "sent",
    });
    const list = new MessageList(this.session.userId, this.media, async (before) => {
      const page = await this.chat.rest.dmHistory(conversationId, { before: before ?? undefined, limit: ROOM_PAGE });
      return { messages: page.messages.map(toItem), done: page.nextBefore === null };
    });
    const view = this.mountView(`dm/${conversationId}`, list, {
      title: peer.name,
      badge: this.avatar(peer.id, peer.name, true),
      sub: h("div", { class: "sub", "data-testid": "dm-sub" }),
      action: this.blockButton(peer),
      send: (text, mediaIds) => this.sendDm(peer.id, list, text, mediaIds),
      typing: (on) => inbox.typing(conversationId, on),
    });
    this.dmList = list;
    list.add(...inbox.pending().filter((e) => e.to === peer.id).map((e) => this.pendingItem(e.clientMsgId, e.text, e.createdAt)));
    view.dispose = chain(view.dispose, () => {
      this.dmList = null;
    });
    this.refreshDmHead();
    this.renderMembers();
    await list.start();
    list.seen(conv.peerReadSeq);
    this.markRead(conversationId);
  }

  private dmList: MessageList | null = null;

  private onDm(m: DmMessage): void {
    const conv = this.conversations.get(m.conversationId);
    if (!conv) {
      void this.loadConversations();
    } else {
      conv.lastMessage = m;
      conv.lastSeq = Math.max(conv.lastSeq, m.seq);
      conv.updatedAt = m.createdAt;
    }
    if (this.view?.key === `dm/${m.conversationId}` && this.dmList) {
      const peerName = conv?.peer.name ?? m.from;
      this.dmList.add({
        key: m.id,
        seq: m.seq,
        userId: m.from,
        userName: m.from === this.session.userId ? this.session.name : peerName,
        text: m.text,
        media: m.media,
        createdAt: m.createdAt,
        state: "sent",
      });
      this.dmList.remove(`pending-${m.clientMsgId}`);
      if (m.from !== this.session.userId) {
        this.showTyping(m.from, false);
        this.markRead(m.conversationId);
      }
    } else if (conv && m.from !== this.session.userId) {
      // Shown at once; the server's count replaces it a moment later (a DM replayed after a
      // reconnect comes without a notification, and one may also arrive before its DM).
      conv.unread = Math.max(conv.unread, 0) + (m.seq > conv.readSeq ? 1 : 0);
      this.refreshConversationsSoon();
    }
    this.renderLists();
  }

  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  private refreshConversationsSoon(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.loadConversations(), 500);
  }

  private markRead(conversationId: string): void {
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    const seq = Math.max(conv.lastSeq, this.dmList?.lastSeq() ?? 0);
    conv.unread = 0;
    conv.readSeq = seq;
    this.renderLists();
    if (seq > 0) void this.chat.inbox().markRead(conversationId, seq).catch(() => undefined);
  }

  private sendDm(to: string, list: MessageList, text: string, mediaIds?: string[]): void {
    const clientMsgId = crypto.randomUUID();
    const key = `pending-${clientMsgId}`;
    const pending = this.pendingItem(clientMsgId, text, Date.now());
    list.add(pending);
    this.chat.inbox()
      .send(to, { text: text || undefined, mediaIds }, { clientMsgId })
      .then(
        (m) => {
          list.remove(key);
          if (!list.has(m.id)) list.add({ key: m.id, seq: m.seq, userId: m.from, userName: this.session.name, text: m.text, media: m.media, createdAt: m.createdAt, state: "sent" });
        },
        (err: ChatError) => {
          if (err.code === "closed") return;
          list.remove(key);
          list.add({ ...pending, key: `failed-${clientMsgId}`, state: "failed", code: err.code, error: err.message, retry: () => {
            list.remove(`failed-${clientMsgId}`);
            this.sendDm(to, list, text, mediaIds);
          } });
        },
      );
  }

  /** Block / Unblock for the open DM's peer. A blocked peer's DMs (and yours to them) are refused by the server. */
  private blockButton(peer: { id: string; name: string }): HTMLElement {
    const button = h("button", { class: "btn secondary small", "data-testid": "block" });
    const draw = () => {
      const blocked = this.blocked.has(peer.id);
      button.textContent = blocked ? "Unblock" : "Block";
      button.title = blocked ? `Let ${peer.name} message you again` : `Stop ${peer.name} from messaging you`;
    };
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        if (this.blocked.has(peer.id)) {
          await this.chat.rest.unblock(peer.id);
          this.blocked.delete(peer.id);
        } else {
          await this.chat.rest.block(peer.id);
          this.blocked.add(peer.id);
        }
      } catch (err) {
        alert(`Could not change the block: ${(err as Error).message}`);
      } finally {
        button.disabled = false;
        draw();
      }
    });
    draw();
    return button;
  }

  private async loadBlocks(): Promise<void> {
    try {
      const blocked = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await this.chat.rest.blocks({ limit: 100, cursor });
        for (const b of page.blocks) blocked.add(b.userId);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      this.blocked = blocked;
    } catch {
      // Shown as not blocked; the server still refuses what it must.
    }
  }

  /** Opens (creating if needed) the conversation with a user. */
  private async startDm(userId: string): Promise<void> {
    try {
      const conv = await this.chat.rest.openConversation(userId);
      this.conversations.set(conv.id, conv);
      this.names.set(conv.peer.id, conv.peer.name);
      void this.chat.inbox().subscribe([conv.peer.id]).catch(() => undefined);
      this.adding = null;
      this.renderLists();
      this.navigate(`dm/${conv.id}`);
    } catch (err) {
      alert(`Could not open a conversation with ${userId}: ${(err as Error).message}`);
    }
  }

  private refreshDmHead(): void {
    const sub = this.mainEl.querySelector<HTMLElement>('[data-testid="dm-sub"]');
    const key = this.view?.key;
    if (!sub || !key?.startsWith("dm/")) return;
    const conv = this.conversations.get(key.slice(3));
    if (!conv) return;
    const status = this.statuses.get(conv.peer.id) ?? "offline";
    sub.textContent = status === "dnd" ? "Do not disturb" : status[0].toUpperCase() + status.slice(1);
    this.mainEl.querySelector(".chat-head .avatar")?.setAttribute("data-status", status);
  }

  // ------------------------------------------------------------------ the open conversation

  private mountView(
    key: string,
    list: MessageList,
    o: { title: string; badge: HTMLElement; sub: HTMLElement; action?: HTMLElement; send: View["send"]; typing: View["typing"] },
  ): View {
    const typingEl = h("div", { class: "typing", "aria-live": "polite", "data-testid": "typing" });
    const uploadEl = h("div", { class: "upload", hidden: true });
    const input = h("textarea", { rows: 1, placeholder: "Message", "aria-label": "Message", enterkeyhint: "send", maxlength: 4000 });
    const file = h("input", { type: "file", accept: "image/*", hidden: true, "data-testid": "file" });
    let typingOn = false;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const stopTyping = () => {
      clearTimeout(idle);
      if (typingOn) {
        typingOn = false;
        view.typing(false);
      }
    };
    const submit = () => {
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      autosize();
      stopTyping();
      view.send(text);
      input.focus();
    };
    const autosize = () => {
      input.style.height = "auto";
      input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
    };
    input.addEventListener("input", () => {
      autosize();
      if (!input.value.trim()) return stopTyping();
      if (!typingOn) {
        typingOn = true;
        view.typing(true);
      }
      clearTimeout(idle);
      idle = setTimeout(stopTyping, TYPING_IDLE_MS);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        submit();
      }
    });
    file.addEventListener("change", () => {
      const f = file.files?.[0];
      file.value = "";
      if (f) void this.upload(f, uploadEl, (id) => view.send(input.value.trim(), [id]));
    });
    const head = h(
      "header",
      { class: "chat-head" },
      h("button", { class: "icon-btn back", "aria-label": "Back", onclick: () => this.navigate("") }, icon("back")),
      o.badge,
      h("div", { class: "label" }, h("div", { class: "title", "data-testid": "chat-title" }, o.title), o.sub),
      key.startsWith("room/")
        ? h("button", { class: "icon-btn", "aria-label": "People", title: "People", onclick: () => this.toggleMembers() }, icon("people"))
        : null,
      o.action,
    );
    replace(
      this.mainEl,
      head,
      this.bannerEl,
      list.el,
      typingEl,
      uploadEl,
      h(
        "form",
        { class: "composer", onsubmit: (ev: Event) => (ev.preventDefault(), submit()) },
        h("button", { type: "button", class: "icon-btn", "aria-label": "Attach an image", title: "Attach an image", onclick: () => file.click() }, icon("attach")),
        file,
        input,
        h("button", { type: "submit", class: "btn send", "aria-label": "Send" }, icon("send")),
      ),
    );
    const view: View = {
      key,
      list,
      typingEl,
      typers: new Map(),
      send: o.send,
      typing: o.typing,
      dispose: () => {
        stopTyping();
        for (const t of view.typers.values()) clearTimeout(t.timer);
      },
    };
    this.view = view;
    this.el.dataset.view = "chat";
    this.setConnection(this.connection);
    this.renderLists();
    if (matchMedia("(min-width: 760px)").matches) input.focus();
    return view;
  }

  private async upload(f: File, el: HTMLElement, send: (id: string) => void): Promise<void> {
    el.hidden = false;
    el.classList.remove("error");
    const bar = h("progress", { max: f.size, value: 0 });
    replace(el, `Uploading ${f.name} (${sizeOf(f.size)})`, bar);
    try {
      const media = await this.chat.rest.upload(f, { onProgress: (p) => (bar.value = p.loaded) });
      el.hidden = true;
      send(media.id);
    } catch (err) {
      el.classList.add("error");
      replace(el, `Upload failed: ${(err as Error).message}`, h("button", { class: "icon-btn", "aria-label": "Dismiss", onclick: () => (el.hidden = true) }, "×"));
    }
  }

  private showTyping(userId: string, on: boolean): void {
    const view = this.view;
    if (!view || userId === this.session.userId) return;
    const prev = view.typers.get(userId);
    if (prev) clearTimeout(prev.timer);
    if (on) {
      // A lost "stopped typing" (the typist went offline) must not leave the line up for good.
      const timer = setTimeout(() => this.showTyping(userId, false), TYPING_EXPIRE_MS);
      view.typers.set(userId, { name: this.names.get(userId) ?? userId, timer });
    } else {
      view.typers.delete(userId);
    }
    view.typingEl.textContent = typingLine([...view.typers.values()].map((t) => t.name));
  }

  // ------------------------------------------------------------------ connection state

  private setConnection(s: ConnectionState): void {
    const back = s === "open" && this.connection !== "open";
    this.connection = s;
    this.connEl.dataset.state = s;
    this.connEl.textContent = CONNECTION_TEXT[s];
    this.bannerEl.dataset.state = s;
    this.bannerEl.hidden = s === "open" || s === "connecting";
    this.bannerEl.textContent =
      s === "offline"
        ? "You are offline. Messages you send now go out when the connection is back."
        : s === "reconnecting"
          ? "Connection lost. Reconnecting… messages you send now are kept and sent once."
          : "Disconnected.";
    if (back) {
      void this.loadRooms();
      this.view?.list.retry();
    }
  }

  // ------------------------------------------------------------------ side panels

  private toggleMembers(): void {
    this.showMembers = !this.showMembers;
    if (matchMedia("(max-width: 759px)").matches) this.el.dataset.view = this.showMembers ? "members" : "chat";
    this.renderMembers();
  }

  private renderMembers(): void {
    const visible = this.showMembers && this.view?.key.startsWith("room/") === true;
    this.el.classList.toggle("with-members", visible);
    this.membersEl.hidden = !visible;
    if (!visible) {
      if (this.el.dataset.view === "members") this.el.dataset.view = "chat";
      return;
    }
    const people = [...this.present].sort((a, b) => a.name.localeCompare(b.name));
    replace(
      this.membersEl,
      h(
        "div",
        { style: "display:flex;align-items:center;gap:.3rem" },
        h("button", { class: "icon-btn back", "aria-label": "Back", onclick: () => this.toggleMembers() }, icon("back")),
        h("h3", {}, `In this room · ${people.length}`),
      ),
      ...people.map((p) =>
        p.userId === this.session.userId
          ? h("div", { class: "member" }, this.avatar(p.userId, p.name), h("span", { class: "label" }, `${p.name} (you)`))
          : h(
              "button",
              { class: "member", title: `Message ${p.name}`, "data-user": p.userId, onclick: () => void this.startDm(p.userId) },
              this.avatar(p.userId, p.name),
              h("span", { class: "label" }, p.name),
              h("span", { class: "dm-hint" }, "Message"),
            ),
      ),
    );
  }

  private renderLists(): void {
    const active = this.view?.key;
    const byCategory = new Map<string, RoomInfo[]>();
    for (const r of this.rooms) {
      const list = byCategory.get(r.category) ?? [];
      list.push(r);
      byCategory.set(r.category, list);
    }
    const categories = [...byCategory.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const roomItems = categories.flatMap((cat) => [
      h("div", { class: "category" }, cat),
      ...byCategory.get(cat)!.map((r) => {
        const online = active === `room/${r.id}` && this.present.length > 0 ? this.present.length : r.onlineCount;
        return h(
          "button",
          { class: "item", "aria-current": active === `room/${r.id}` ? "true" : "false", "data-room": r.id, onclick: () => this.navigate(`room/${r.id}`) },
          h("span", { class: "hash" }, "#"),
          h("span", { class: "label" }, h("span", { class: "title" }, r.name), h("span", { class: "sub" }, r.description)),
          h("span", { class: `online${online ? "" : " zero"}`, title: `${online} online` }, online ? `● ${online}` : "○ 0"),
        );
      }),
    ]);
    const convs = [...this.conversations.values()].sort((a, b) => b.updatedAt - a.updatedAt);
    const dmItems = convs.map((c) => {
      const last = c.lastMessage;
      const preview = last ? `${last.from === this.session.userId ? "You: " : ""}${last.text ?? (last.media?.length ? "📷 Image" : "")}` : "No messages yet";
      return h(
        "button",
        {
          class: `item${c.unread ? " unread" : ""}`,
          "aria-current": active === `dm/${c.id}` ? "true" : "false",
          "data-dm": c.peer.id,
          onclick: () => this.navigate(`dm/${c.id}`),
        },
        this.avatar(c.peer.id, c.peer.name, true),
        h("span", { class: "label" }, h("span", { class: "title" }, c.peer.name), h("span", { class: "sub" }, preview)),
        c.unread ? h("span", { class: "badge", "data-testid": "unread", "aria-label": `${c.unread} unread` }, c.unread > 99 ? "99+" : c.unread) : null,
      );
    });
    const scroll = this.listsEl.scrollTop;
    // DMs first: a short list whose unread badges must not scroll out of sight below the rooms.
    replace(
      this.listsEl,
      h(
        "div",
        { class: "section-title" },
        "Direct messages",
        h("button", { class: "icon-btn", "aria-label": "New direct message", title: "New direct message", onclick: () => this.toggleAdding("dm") }, icon("plus")),
      ),
      this.adding === "dm" ? this.newDmForm() : null,
      ...(dmItems.length ? dmItems : [h("div", { class: "empty" }, "No conversations yet. Open a room's member list to message someone.")]),
      h(
        "div",
        { class: "section-title" },
        "Rooms",
        h("button", { class: "icon-btn", "aria-label": "New room", title: "New room", onclick: () => this.toggleAdding("room") }, icon("plus")),
      ),
      this.adding === "room" ? this.newRoomForm() : null,
      this.renderNearby(),
      ...(roomItems.length ? roomItems : [h("div", { class: "empty" }, "Loading rooms…")]),
    );
    this.listsEl.scrollTop = scroll;
    const unread = convs.reduce((n, c) => n + c.unread, 0);
    document.title = unread ? `(${unread}) edge-chat` : "edge-chat";
  }

  private toggleAdding(what: "room" | "dm"): void {
    this.adding = this.adding === what ? null : what;
    this.renderLists();
    this.listsEl.querySelector<HTMLInputElement>(".inline-form input")?.focus();
  }

  private newDmForm(): HTMLElement {
    const input = h("input", { placeholder: "Their name", "aria-label": "Name of the person to message", required: true });
    return h(
      "form",
      {
        class: "inline-form",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          const id = userIdFor(input.value);
          if (id && id !== this.session.userId) void this.startDm(id);
        },
      },
      input,
      h("button", { class: "btn" }, "Open"),
    );
  }

  private newRoomForm(): HTMLElement {
    const name = h("input", { placeholder: "Room name", "aria-label": "Room name", required: true, maxlength: 64 });
    const category = h("select", { "aria-label": "Category" }, ...CATEGORY_ORDER.map((c) => h("option", { value: c }, c)));
    return h(
      "form",
      {
        class: "inline-form",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void this.createRoom({ name: name.value.trim(), category: category.value });
        },
      },
      name,
      category,
      h("button", { class: "btn" }, "Create"),
    );
  }

  private async createRoom(room: { name: string; category: string; description?: string; lat?: number; lon?: number }): Promise<void> {
    try {
      const created = await this.chat.rest.createRoom(room);
      this.rooms.push(created);
      this.adding = null;
      this.renderLists();
      this.navigate(`room/${created.id}`);
    } catch (err) {
      alert(`Could not create the room: ${(err as Error).message}`);
    }
  }

  private renderNearby(): HTMLElement {
    const s = this.nearby;
    const share = h(
      "button",
      { class: "btn secondary", disabled: this.nearbyBusy, onclick: () => void this.shareLocation() },
      icon("pin"),
      this.nearbyBusy ? " Looking around…" : s ? " Refresh nearby rooms" : " Share location for nearby rooms",
    );
    if (!s) return h("div", { class: "nearby" }, share);
    const body: (HTMLElement | string)[] = [];
    if (s.status === "rooms") {
      body.push(
        ...s.rooms.map((r) =>
          h(
            "button",
            { class: "item", style: "padding:.3rem 0", onclick: () => this.navigate(`room/${r.id}`) },
            h("span", { class: "hash" }, "#"),
            h("span", { class: "label" }, h("span", { class: "title" }, r.name), h("span", { class: "sub" }, `${r.distanceKm} km · ${r.onlineCount} online`)),
          ),
        ),
      );
    } else if (s.status === "propose" && s.proposed) {
      const p = s.proposed;
      body.push(h("span", {}, `${s.nearbyUsers} people are chatting near you.`), h("button", { class: "btn", onclick: () => void this.createRoom(p) }, `Create “${p.name}”`));
    } else {
      body.push(h("span", { class: "reason" }, s.reason));
    }
    return h("div", { class: "nearby", "data-testid": "nearby", "data-status": s.status }, ...body, share);
  }

  private async shareLocation(): Promise<void> {
    this.nearbyBusy = true;
    this.renderLists();
    try {
      const pos = await new Promise<GeolocationPosition>((resolve, reject) =>
        navigator.geolocation.getCurrentPosition(resolve, reject, { enableHighAccuracy: false, timeout: 10_000, maximumAge: 600_000 }),
      );
      await this.loadNearby({ lat: round(pos.coords.latitude), lon: round(pos.coords.longitude) });
    } catch (err) {
      // No permission or no fix: the server may still know a recent location of ours.
      await this.loadNearby();
      if (this.nearby?.status === "no_location") this.nearby = { ...this.nearby, reason: `Location unavailable (${(err as Error).message || "denied"}).` };
    } finally {
      this.nearbyBusy = false;
      this.renderLists();
    }
  }

  private async loadNearby(at?: { lat: number; lon: number }): Promise<void> {
    try {
      this.nearby = await this.chat.rest.suggestions(at ?? {});
    } catch {
      // Kept as it was.
    }
    this.renderLists();
  }

  private avatar(userId: string, name: string, withStatus = false): HTMLElement {
    return h(
      "div",
      { class: "avatar", style: `background:${colorFor(userId)}`, "data-status": withStatus ? (this.statuses.get(userId) ?? "offline") : null, title: name },
      initials(name),
    );
  }
}

function rank(category: string): number {
  const i = CATEGORY_ORDER.indexOf(category);
  return i < 0 ? CATEGORY_ORDER.length : i;
}

/** About 1 km: the server rounds to that too; nothing finer leaves the page. */
function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function chain(a: () => void, b: () => void): () => void {
  return () => {
    b();
    a();
  };
}

