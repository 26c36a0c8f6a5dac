/**
 * A user's coarse location for room suggestions. Owned by the suggestions work (issue 7):
 * callers use `recordLocation`; its storage and rounding live here.
 */

export interface Coords {
  lat: number;
  lon: number;
}

/**
 * Stores the user's location rounded to about 1 km, with the time. Invalid coordinates are ignored.
 * TODO(issue 7): implement with spatial cells in D1 `user_locations`.
 */
export async function recordLocation(env: Env, userId: string, coords: Coords, now = Date.now()): Promise<void> {
  void env;
  void userId;
  void coords;
  void now;
}
