/**
 * The read gate of a room, for every route that reads or joins one (info, history, the socket, and
 * at merge search and replies): a private room is readable by its members (and admins) only, and
 * to anyone else answers exactly as a room that does not exist. The room's Durable Object decides
 * (`canRead`, authoritative); a public room needs no call to it.
 */
import { eq } from "drizzle-orm";
import { db } from "../db/queries";
import { rooms } from "../db/schema";
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
 * Whether `user` may read the room `roomId` (for what a room's messages carry, e.g. media): false for
 * a room that no longer exists or a private room they are not a member of.
 */
export async function mayReadRoom(env: Env, roomId: string, user: AuthUser): Promise<boolean> {
  const room = await db(env).select({ id: rooms.id, visibility: rooms.visibility }).from(rooms).where(eq(rooms.id, roomId)).get();
  if (!room) return false;
  if (room.visibility === "public") return true;
  return roomStub(env, room.id).canRead(user.id, user.admin === true);
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
