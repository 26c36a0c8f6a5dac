// Progress on stderr: one line rewritten in place on a terminal, a line every few seconds otherwise.
const tty = process.stderr.isTTY;
let last = 0;
let lastLen = 0;
const started = Date.now();

const stamp = () => {
  const s = Math.round((Date.now() - started) / 1000);
  return `[${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}]`;
};

/** Shows `text` as the current activity (throttled). */
export function status(text) {
  const now = Date.now();
  if (tty) {
    if (now - last < 100) return;
    last = now;
    const line = `${stamp()} ${text}`.slice(0, (process.stderr.columns || 120) - 1);
    process.stderr.write(`\r${line}${" ".repeat(Math.max(0, lastLen - line.length))}`);
    lastLen = line.length;
  } else if (now - last >= 5000) {
    last = now;
    process.stderr.write(`${stamp()} ${text}\n`);
  }
}

/** Prints a permanent line (a finished step). */
export function note(text) {
  if (tty && lastLen) process.stderr.write(`\r${" ".repeat(lastLen)}\r`);
  lastLen = 0;
  process.stderr.write(`${stamp()} ${text}\n`);
}
