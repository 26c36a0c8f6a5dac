// Compiled (never run) by client/build.mjs against the built dist/ with nodenext resolution, as a
// consumer would: fails the build when the published declarations are not usable on their own.
import { ChatClient, LocalStorageOutboxStore, type RoomMessage, type DmMessage, type ServerFrame } from "@edge-chat/client";
const chat = new ChatClient({ baseUrl: "http://127.0.0.1:8787", token: async () => "t" });
chat.on("connection", (s) => { const x: "connecting" | "open" | "reconnecting" | "offline" | "closed" = s; void x; });
const room = chat.room("general");
room.on("message", (m: RoomMessage) => console.log(m.seq, m.text));
room.on("state", (s) => console.log(s.lastSeq, s.present[0]?.name));
const sent: Promise<RoomMessage> = room.send({ text: "hi" });
const inbox = chat.inbox();
inbox.on("dm", (m: DmMessage) => console.log(m.conversationId));
inbox.on("notification", (n) => console.log(n.unread));
const d: Promise<DmMessage> = inbox.send("bob", { text: "hi" });
const f: ServerFrame["type"] = "batch" as never;
void sent; void d; void f; void LocalStorageOutboxStore;
// @ts-expect-error: a room send has no `to`
room.send({ to: "x" });
chat.rest.rooms({ category: "tech" }).then((p) => p.rooms[0]?.onlineCount);
await chat.close();
export {};
