/** The only place that turns names into Durable Object ids. */

/** The ChatRoom Durable Object of a room (one per room id). */
export function roomStub(env: Env, roomId: string): DurableObjectStub<import("./chat-room").ChatRoom> {
  return env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(roomId));
}

/** The Inbox Durable Object of a user (one per user id). */
export function inboxStub(env: Env, userId: string): DurableObjectStub<import("./inbox").Inbox> {
  return env.INBOX.get(env.INBOX.idFromName(userId));
}
