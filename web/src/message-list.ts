/**
 * The scrolling list of one conversation (a room or a DM): messages in seq order, join/leave lines,
 * the user's own sends while they wait for their ack, and older pages loaded on scrolling up.
 * One node per message, keyed by the stored message id, so a message that arrives twice (a history
 * page overlapping the live stream) is shown once.
 */
import { h } from "./dom";
import { colorFor, dayOf, initials, timeOf } from "./format";
import type { MediaView } from "./media";

/** A message as the list shows it. */
export interface ListMessage {
  /** The stored message id, or a local key while the send waits for its ack. */
  key: string;
  seq: number | null;
  userId: string;
  userName: string;
  text?: string;
  media?: { id: string; url: string; contentType: string; size: number }[];
  createdAt: number;
  state: "sent" | "pending" | "failed";
  /** For a failed send: why (the server's error code and message), and how to try again. */
  code?: string;
  error?: string;
  retry?: () => void;
  /** Set once edited (the text is the latest). */
  editedAt?: number;
  /** A tombstone: the text and media are gone. */
  deleted?: boolean;
  /** Reaction counts by emoji, and the reader's own. */
  reactions?: Record<string, number>;
  myReactions?: string[];
}

/** What the reader may do to a stored message (rooms): react, and edit or delete their own. */
export interface MessageActions {
  react(key: string, emoji: string, on: boolean): void;
  edit(key: string, text: string): void;
  remove(key: string): void;
}

/** The emoji the demo offers on every message. */
const QUICK = "👍";

type Row = { kind: "msg"; m: ListMessage; order: number } | { kind: "sys"; key: string; text: string; at: number; order: number };

/** An older page: messages and whether the start of the conversation was reached. */
export interface OlderPage {
  messages: ListMessage[];
  done: boolean;
}

export class MessageList {
  /** The scrolling element; put it in the page. */
  readonly el: HTMLElement;
  private rows = new Map<string, Row>();
  private nodes = new Map<string, HTMLElement>();
  private maxSeq = 0;
  private sysCount = 0;
  private loading = false;
  private done = false;
  private failed = false;
  private seenSeq = 0;
  private seenEl = h("span", { class: "seen", "data-testid": "seen" }, " · Seen");
  private edge: HTMLElement;

  constructor(
    private readonly me: string,
    private readonly media: MediaView,
    private readonly loadOlder: (beforeSeq: number | null) => Promise<OlderPage>,
    private readonly actions?: MessageActions,
  ) {
    this.edge = h("div", { class: "history-edge" }, "Loading history…");
    this.el = h("div", { class: "messages", role: "log", "aria-live": "polite" }, this.edge);
    this.el.addEventListener("scroll", () => {
      if (this.el.scrollTop < 120) void this.older();
    });
  }

  /** Loads the first page of history (the newest messages). */
  async start(): Promise<void> {
    await this.older();
    this.scrollToEnd();
  }

  /** Loads history again if the last attempt failed (called when the connection is back). */
  retry(): void {
    if (this.failed) void this.older();
  }

  /** The seq of the oldest message held, or null when none is held. */
  private oldestSeq(): number | null {
    let min: number | null = null;
    for (const r of this.rows.values()) if (r.kind === "msg" && r.m.seq !== null && (min === null || r.m.seq < min)) min = r.m.seq;
    return min;
  }

  private async older(): Promise<void> {
    if (this.loading || this.done) return;
    this.loading = true;
    this.failed = false;
    try {
      const before = this.oldestSeq();
      if (before === 1) {
        this.done = true;
      } else {
        const page = await this.loadOlder(before);
        const fromBottom = this.el.scrollHeight - this.el.scrollTop;
        for (const m of page.messages) this.put(m);
        this.done = page.done || page.messages.length === 0;
        this.render();
        // Keep what the reader was looking at in place while older messages appear above it.
        this.el.scrollTop = this.el.scrollHeight - fromBottom;
      }
      this.edge.textContent = this.done ? "This is the beginning of the conversation." : "Loading history…";
      this.edge.hidden = false;
    } catch {
      this.failed = true;
      this.edge.textContent = "Could not load older messages; scroll up to try again.";
    } finally {
      this.loading = false;
    }
    this.render();
  }

  private put(m: ListMessage): void {
    if (m.seq !== null) this.maxSeq = Math.max(this.maxSeq, m.seq);
    const order = m.state === "sent" && m.seq !== null ? m.seq : Number.MAX_SAFE_INTEGER;
    const prev = this.rows.get(m.key);
    if (prev?.kind === "msg" && prev.m.state === "sent" && m.state !== "sent") return;
    this.rows.set(m.key, { kind: "msg", m, order });
    this.nodes.delete(m.key);
  }

  /** Adds or updates messages (live, acked or pending), then redraws. */
  add(...messages: ListMessage[]): void {
    const stick = this.nearEnd() || messages.some((m) => m.userId === this.me);
    for (const m of messages) this.put(m);
    this.render();
    if (stick) this.scrollToEnd();
  }

  /** Removes a row (a pending send once its stored message is in). */
  remove(key: string): void {
    if (this.rows.delete(key)) {
      this.nodes.get(key)?.remove();
      this.nodes.delete(key);
      this.render();
    }
  }

  /** True when a stored message with this id is shown. */
  has(key: string): boolean {
    return this.rows.has(key);
  }

  /** A join/leave line, placed after the newest message known when it happened. */
  system(text: string, at: number): void {
    const stick = this.nearEnd();
    const key = `sys-${++this.sysCount}`;
    this.rows.set(key, { kind: "sys", key, text, at, order: this.maxSeq + 0.5 + this.sysCount / 1e6 });
    this.render();
    if (stick) this.scrollToEnd();
  }

  /** Marks the user's own messages up to `seq` as read by the other side (DMs). */
  seen(seq: number): void {
    if (seq <= this.seenSeq) return;
    this.seenSeq = seq;
    this.render();
  }

  /** The highest seq shown (for read receipts). */
  lastSeq(): number {
    return this.maxSeq;
  }

  private nearEnd(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 80;
  }

  scrollToEnd(): void {
    this.el.scrollTop = this.el.scrollHeight;
  }

  private render(): void {
    const rows = [...this.rows.values()].sort((a, b) => a.order - b.order || timeOfRow(a) - timeOfRow(b));
    const out: HTMLElement[] = [this.edge];
    let lastDay = "";
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const day = dayOf(timeOfRow(r));
      if (day !== lastDay) {
        out.push(this.node(`day-${day}`, () => h("div", { class: "day" }, day)));
        lastDay = day;
      }
      if (r.kind === "sys") {
        out.push(this.node(r.key, () => h("div", { class: "sys" }, r.text)));
        continue;
      }
      const prev = rows[i - 1];
      const next = rows[i + 1];
      const first = !(prev?.kind === "msg" && prev.m.userId === r.m.userId && dayOf(prev.m.createdAt) === day);
      const last = !(next?.kind === "msg" && next.m.userId === r.m.userId && dayOf(next.m.createdAt) === day);
      const node = this.node(r.m.key, () => this.draw(r.m));
      node.classList.toggle("first", first);
      node.classList.toggle("last", last);
      const author = node.querySelector<HTMLElement>(".author");
      if (author) author.hidden = !first || r.m.userId === this.me;
      out.push(node);
    }
    // "Seen" goes under the newest of the user's own messages the other side has read.
    let seenAt: ListMessage | undefined;
    for (const r of rows) if (r.kind === "msg" && r.m.userId === this.me && r.m.seq !== null && r.m.seq <= this.seenSeq) seenAt = r.m;
    if (seenAt) this.nodes.get(seenAt.key)?.querySelector(".meta")?.append(this.seenEl);
    else this.seenEl.remove();
    // Move nodes into place instead of replacing them all: emptying the list would reset its scroll
    // position and reload images.
    let cursor = this.el.firstChild;
    for (const node of out) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
        continue;
      }
      this.el.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  private node(key: string, make: () => HTMLElement): HTMLElement {
    let node = this.nodes.get(key);
    if (!node) {
      node = make();
      this.nodes.set(key, node);
    }
    return node;
  }

  private draw(m: ListMessage): HTMLElement {
    const mine = m.userId === this.me;
    const media = m.media?.length
      ? h("div", { class: "media" }, ...m.media.map((d) => this.media.render(d)))
      : null;
    let meta: Node | string = timeOf(m.createdAt) + (m.editedAt && !m.deleted ? " · edited" : "");
    if (m.state === "pending") meta = "Sending…";
    if (m.state === "failed") {
      meta = h("span", {}, `Not sent: ${m.error ?? "error"}`, " ", m.retry ? h("button", { class: "retry", onclick: () => m.retry?.() }, "Retry") : null);
    }
    return h(
      "div",
      {
        class: `msg ${mine ? "mine" : "theirs"} ${m.state}`,
        "data-key": m.key,
        "data-seq": m.seq ?? "",
        "data-user": m.userId,
        "data-code": m.code ?? null,
      },
      h("div", { class: "avatar small", style: `background:${colorFor(m.userId)}`, title: m.userName }, initials(m.userName)),
      h(
        "div",
        { class: "bubble" },
        h("div", { class: "author", style: `color:${colorFor(m.userId)}` }, m.userName),
        m.deleted ? h("div", { class: "tombstone" }, "Message deleted") : media,
        m.text && !m.deleted ? h("div", { class: "text" }, m.text) : null,
        this.reactionsOf(m),
        h("div", { class: "meta" }, meta),
      ),
    );
  }

  /** Reaction chips (click: toggle your own), a quick 👍, and Edit / Delete on your own messages. */
  private reactionsOf(m: ListMessage): HTMLElement | null {
    const a = this.actions;
    if (!a || m.state !== "sent" || m.deleted) return null;
    const mine = new Set(m.myReactions ?? []);
    const counts = { ...m.reactions };
    if (!(QUICK in counts)) counts[QUICK] = 0;
    const chips = Object.entries(counts).map(([emoji, n]) =>
      h(
        "button",
        {
          class: `chip${mine.has(emoji) ? " on" : ""}`,
          "data-emoji": emoji,
          "aria-pressed": mine.has(emoji) ? "true" : "false",
          title: mine.has(emoji) ? "Take your reaction back" : "React",
          onclick: () => a.react(m.key, emoji, !mine.has(emoji)),
        },
        n > 0 ? `${emoji} ${n}` : emoji,
      ),
    );
    const own =
      m.userId === this.me
        ? [
            h("button", { class: "act", "data-act": "edit", onclick: () => {
              const text = prompt("Edit message", m.text ?? "");
              if (text !== null && text.trim() && text !== m.text) a.edit(m.key, text);
            } }, "Edit"),
            h("button", { class: "act", "data-act": "delete", onclick: () => {
              if (confirm("Delete this message?")) a.remove(m.key);
            } }, "Delete"),
          ]
        : [];
    return h("div", { class: "reactions" }, ...chips, ...own);
  }
}

function timeOfRow(r: Row): number {
  return r.kind === "msg" ? r.m.createdAt : r.at;
}
