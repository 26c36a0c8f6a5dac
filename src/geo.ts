/**
 * Pure geometry for room suggestions: great-circle distance, rounding, spatial cells.
 * Owned by the suggestions work (issue 7); `cellOf` is used by room creation.
 */

/**
 * The spatial cell of a point, stored with rooms and user locations so nearby lookups touch only
 * the cells around the caller. TODO(issue 7): the real cell scheme.
 */
export function cellOf(lat: number, lon: number): string {
  return `${Math.floor(lat)}:${Math.floor(lon)}`;
}
