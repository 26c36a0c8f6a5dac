/**
 * Pure status rules for a user's inbox: what others see, given the chosen status,
 * whether any socket is open, and who is looking. No Cloudflare imports.
 */
import type { Status } from "../protocol";

/** What a user may choose with a `presence` frame. */
export type ChosenStatus = "online" | "away" | "dnd" | "invisible";

/** A status as shown to someone else. */
export interface StatusView {
  status: Status;
  /** Epoch ms the user was last seen; null while shown online/away/dnd, or when unknown or hidden. */
  lastSeen: number | null;
}

/** What a user's inbox stores about its own status. */
export interface OwnStatus {
  chosen: ChosenStatus;
  /** Epoch ms the user last went offline (or invisible); null if never seen. */
  lastSeen: number | null;
}

/** The view of someone hidden from the viewer: blocked either way. Reveals nothing, not even a last-seen time. */
export const HIDDEN: StatusView = Object.freeze({ status: "offline", lastSeen: null });

/** The status others see: offline without open sockets; `invisible` shows as offline. */
export function publicView(own: OwnStatus, online: boolean): StatusView {
  if (!online || own.chosen === "invisible") return { status: "offline", lastSeen: own.lastSeen };
  return { status: own.chosen, lastSeen: null };
}

/**
 * The chosen status when the first socket of an offline user connects: `away` is about idleness
 * and is reset, while `dnd` and `invisible` are deliberate and persist across sessions.
 */
export function chosenOnConnect(chosen: ChosenStatus): ChosenStatus {
  return chosen === "away" ? "online" : chosen;
}

/** True when two views would look the same to a client (no frame needed). */
export function sameView(a: StatusView | null, b: StatusView): boolean {
  return a !== null && a.status === b.status && a.lastSeen === b.lastSeen;
}
