// The payload that lets the receiver measure latency and loss without help from the server.
// The message text starts with `~<sender>.<seq>.<intendedMicros>~` then padding; the receiver
// finds `"text":"~` in the raw frame (batches included) without JSON.parse, and takes the frame
// type from the nearest `"type":"` before it, so an ack carrying the stored message is not a delivery.

/** Microseconds since the epoch, fractional ms kept; comparable across processes on one machine. */
export const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** The text of message `seq` of sender `sender` (an integer), intended at `intendedUs`, padded to `size` chars. */
export function markerText(sender, seq, intendedUs, size = 64) {
  const head = `~${sender}.${seq}.${intendedUs}~`;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

const NEEDLE = '"text":"~';
const TYPE = '"type":"';

/**
 * Calls `onMarker(type, sender, seq, intendedUs)` for every marked text in a raw frame.
 * `type` is the frame type the text sits in (`message`, `dm`, `ack`, ...).
 */
export function scanMarkers(raw, onMarker) {
  let i = raw.indexOf(NEEDLE);
  while (i !== -1) {
    const t = raw.lastIndexOf(TYPE, i);
    const type = t === -1 ? "" : raw.slice(t + TYPE.length, raw.indexOf('"', t + TYPE.length));
    const a = i + NEEDLE.length;
    const d1 = raw.indexOf(".", a);
    const d2 = raw.indexOf(".", d1 + 1);
    const end = raw.indexOf("~", d2 + 1);
    if (d1 === -1 || d2 === -1 || end === -1) return;
    onMarker(type, Number(raw.slice(a, d1)), Number(raw.slice(d1 + 1, d2)), Number(raw.slice(d2 + 1, end)));
    i = raw.indexOf(NEEDLE, end);
  }
}
