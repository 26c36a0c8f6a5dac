/** Display helpers: names, avatars, times. Pure. */

/** The user id a display name signs in as: "Zoë Smith" → "zoe-smith". Empty when nothing is left. */
export function userIdFor(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
}

/** An avatar's letters: the first of a one-word name, first and last of a longer one. */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return "?";
  const first = [...parts[0]][0] ?? "?";
  const second = parts.length > 1 ? ([...parts[parts.length - 1]][0] ?? "") : "";
  return (first + second).toUpperCase();
}

/** A stable avatar colour per user id (FNV-1a, spread round the colour wheel by the golden angle). */
export function colorFor(userId: string): string {
  let h = 0x811c9dc5;
  for (const ch of userId) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return `hsl(${Math.round(((h % 1000) * 137.508) % 360)} 55% 45%)`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "short", day: "numeric" });

/** "14:05". */
export function timeOf(ms: number): string {
  return timeFmt.format(ms);
}

/** "Today", "Yesterday" or "Tuesday, Nov 24". */
export function dayOf(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const today = new Date(now);
  const sameDay = (a: Date, b: Date) => a.toDateString() === b.toDateString();
  if (sameDay(d, today)) return "Today";
  const y = new Date(now - 86_400_000);
  if (sameDay(d, y)) return "Yesterday";
  return dayFmt.format(d);
}

/** "3 kB", "1.2 MB". */
export function sizeOf(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** "Alice is typing…", "Alice and Bob are typing…", "3 people are typing…". */
export function typingLine(names: string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
