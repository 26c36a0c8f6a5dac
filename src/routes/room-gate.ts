/**
 * The read gate of a room, for every route that reads or joins one (info, history, the socket, and
 * at merge search and replies): a private room is readable by its members (and admins) only, and
 * to anyone else answers exactly as a room that does not exist. The room's Durable Object decides
 * (`canRead`, authoritative); a public room needs no call to it.
 */
import type { AuthUser } from "../env";
import { ApiError } from "../errors";
import type { ModAction, ModResult } from "../objects/chat-room/moderation";
import { roomStub } from "../objects/stubs";

/** The 404 of a room that does not exist, word for word: a private room's refusal must not differ. */
export function noSuchRoom(roomId: string): ApiError {
  return new ApiError({ code: "not_found", message: `No room ${roomId}.` });
}

/** Throws {@link noSuchRoom} when `user` may not read the room (already read from D1: `room`). */
export async function assertCanRead(env: Env, room: { id: string; visibility: "public" | "private" }, user: AuthUser): Promise<void> {
  if (room.visibility === "public") return;
  if (!(await roomStub(env, room.id).canRead(user.id, user.admin === true))) throw noSuchRoom(room.id);
}

/**
 * Runs one moderation action in the room's object as `user` and returns its data; a refusal becomes
 * the ApiError of the one renderer (a private room's non-member gets {@link noSuchRoom}).
 */
export async function moderate(env: Env, room: { id: string; createdBy: string }, user: AuthUser, action: ModAction): Promise<unknown> {
  const res = (await roomStub(env, room.id).moderate({ userId: user.id, name: user.name, admin: user.admin === true }, action, room.createdBy)) as ModResult;
  if (!res.ok) throw new ApiError({ code: res.code, message: res.message });
  return res.data;
}
