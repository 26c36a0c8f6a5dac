/**
 * A scripted WebSocket and REST server for the SDK's unit tests: the test opens, answers, fails and
 * closes sockets by hand and reads what the SDK sent. Paired with vitest's fake timers.
 */
import { vi } from "vitest";
import { ChatClient, type ChatClientOptions, type ServerFrame, type WebSocketLike } from "../../client/src/index.js";

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: string[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: ServerFrame | { type: string; [k: string]: unknown }): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  receiveRaw(data: unknown): void {
    this.onmessage?.({ data });
  }
  /** Node 22's refused connection: `error`, never `close`. */
  refuse(): void {
    this.readyState = 3;
    this.onerror?.({});
  }
  serverClose(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  /** Frames the SDK sent, parsed. */
  frames(): Array<Record<string, unknown> & { type: string }> {
    return this.sent.map((s) => JSON.parse(s));
  }
  last(type: string): (Record<string, unknown> & { type: string; id?: number }) | undefined {
    return this.frames().filter((f) => f.type === type).at(-1);
  }
}

/** A WebSocket class recording every instance, newest last. */
export function socketClass() {
  const sockets: FakeSocket[] = [];
  class S extends FakeSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: S, sockets };
}

/**
 * A fetch answering GET /api/chat/dms from a mutable list, the room `general`, and 404 for anything
 * else; `state.failures` makes that many next calls fail like a network error.
 */
export function fakeRest(conversations: Array<{ id: string; lastSeq: number; lastMessage?: { rev?: number } | null }> = []) {
  const calls: string[] = [];
  const state = { failures: 0 };
  const fetch = (async (input: RequestInfo | URL) => {
    const url = String(input);
    calls.push(url);
    if (state.failures > 0) {
      state.failures--;
      throw new TypeError("fetch failed");
    }
    if (url.endsWith("/api/chat/rooms/general")) {
      return new Response(JSON.stringify({ id: "general", name: "General" }), { headers: { "Content-Type": "application/json" } });
    }
    if (url.includes("/api/chat/dms")) {
      return new Response(JSON.stringify({ conversations, nextCursor: null }), { headers: { "Content-Type": "application/json" } });
    }
    return new Response(JSON.stringify({ error: { code: "not_found", message: "no" } }), { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, calls, conversations, state };
}

/** Lets pending promises and zero-delay timers run. */
export const settle = () => vi.advanceTimersByTimeAsync(0);

/** A client on fake sockets and fake REST with deterministic jitter (random() = 0.5 unless given). */
export function makeClient(over: Partial<ChatClientOptions> = {}) {
  const ws = socketClass();
  const rest = fakeRest();
  let tokens = 0;
  const chat = new ChatClient({
    baseUrl: "http://chat.test",
    token: () => `t${++tokens}`,
    WebSocket: ws.WebSocket,
    fetch: rest.fetch,
    random: () => 0.5,
    ...over,
  });
  return { chat, sockets: ws.sockets, rest, tokenCalls: () => tokens };
}

let seq = 0;
/** A room message as the server stores it. */
export function roomMsg(n: number, over: Record<string, unknown> = {}) {
  return {
    id: `m${n}-${++seq}`,
    roomId: "general",
    seq: n,
    userId: "bob",
    userName: "Bob",
    clientMsgId: `c${n}-${seq}`,
    text: `message ${n}`,
    createdAt: 1,
    ...over,
  };
}

/** A DM as one inbox stores it. */
export function dmMsg(conversationId: string, n: number, over: Record<string, unknown> = {}) {
  return {
    id: `d${conversationId}-${n}`,
    conversationId,
    seq: n,
    from: "bob",
    to: "alice",
    clientMsgId: `dc${n}-${++seq}`,
    text: `dm ${n}`,
    createdAt: 1,
    ...over,
  };
}

export function roomState(lastSeq: number, over: Record<string, unknown> = {}) {
  return { type: "room_state", roomId: "general", present: [], messages: [], lastSeq, ...over };
}
