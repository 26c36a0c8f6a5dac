// The socket.io peer for `npm run bench`: a Node server doing the chat service's room work.
// Each `frame` event is validated with the service's own zod protocol (src/protocol.ts), stored in
// SQLite (node:sqlite, WAL, one row per message with its per-room seq, idempotent on clientMsgId),
// broadcast to the room as a `message` frame and acknowledged. With --redis, rooms span processes
// through @socket.io/redis-adapter. Usage: node socketio-server.mjs --port 8851 [--redis 6390] [--db file]
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { Server } from "socket.io";
import { ClientMessage } from "../../src/protocol.ts";

const { values: opts } = parseArgs({
  options: { port: { type: "string" }, redis: { type: "string" }, db: { type: "string" } },
});
const port = Number(opts.port ?? 8851);

const dbFile = opts.db ?? path.join(mkdtempSync(path.join(tmpdir(), "bench-sio-")), "chat.sqlite");
const db = new DatabaseSync(dbFile);
db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
  CREATE TABLE IF NOT EXISTS messages (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    user_id TEXT NOT NULL, client_msg_id TEXT NOT NULL, text TEXT, created_at INTEGER NOT NULL,
    PRIMARY KEY (room, seq));
  CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages (room, user_id, client_msg_id);`);
const insert = db.prepare(
  "INSERT INTO messages (room, seq, id, user_id, client_msg_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
);
const findDup = db.prepare("SELECT seq, id, text, created_at FROM messages WHERE room = ? AND user_id = ? AND client_msg_id = ?");
const lastSeq = db.prepare("SELECT MAX(seq) AS seq FROM messages WHERE room = ?");
const seqs = new Map();
const nextSeq = (room) => {
  let s = seqs.get(room);
  if (s === undefined) s = Number(lastSeq.get(room)?.seq ?? 0);
  seqs.set(room, ++s);
  return s;
};

const httpServer = createServer((req, res) => {
  if (req.url === "/health") return res.writeHead(200).end("ok");
  // The memory scenario collects garbage before reading RSS (the harness starts us with --expose-gc).
  if (req.url === "/gc" && typeof globalThis.gc === "function") {
    globalThis.gc();
    return res.writeHead(200).end("ok");
  }
  res.writeHead(404).end("not found");
});
const io = new Server(httpServer, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });

if (opts.redis) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: `redis://127.0.0.1:${opts.redis}` });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis pub:", e.message));
  sub.on("error", (e) => console.error("redis sub:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

let counter = 0;
io.on("connection", (socket) => {
  const q = socket.handshake.query;
  const room = String(q.room ?? "general");
  const user = { id: String(q.user ?? socket.id), name: String(q.user ?? socket.id) };
  socket.join(room);
  socket.on("frame", (data) => {
    const parsed = ClientMessage.safeParse(data);
    if (!parsed.success) {
      socket.emit("error", { type: "error", code: "bad_request", message: parsed.error.issues[0]?.message ?? "invalid" });
      return;
    }
    const msg = parsed.data;
    if (msg.type !== "send_room_message") {
      socket.emit("error", { type: "error", id: msg.id, code: "bad_request", message: `unsupported ${msg.type}` });
      return;
    }
    const dup = findDup.get(room, user.id, msg.clientMsgId);
    if (dup) {
      socket.emit("ack", { type: "ack", id: msg.id, duplicate: true });
      return;
    }
    const message = {
      id: `${port}-${++counter}`,
      roomId: room,
      seq: nextSeq(room),
      userId: user.id,
      userName: user.name,
      clientMsgId: msg.clientMsgId,
      text: msg.text,
      createdAt: Date.now(),
    };
    insert.run(room, message.seq, message.id, user.id, msg.clientMsgId, msg.text ?? null, message.createdAt);
    io.to(room).emit("message", { type: "message", message });
    socket.emit("ack", { type: "ack", id: msg.id, message });
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
const stop = () => {
  io.close();
  db.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
