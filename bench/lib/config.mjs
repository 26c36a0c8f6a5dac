// What each run measures: `full` for `npm run bench`, `smoke` for `npm run bench:smoke` (every
// scenario with small counts, a few seconds each, so CI keeps the harness working).

/** @typedef {{ name: string, sockets: number, ratePerSec: number, room: string }} FixedCase */

export const PROFILES = {
  full: {
    warmupMs: 3000,
    measureMs: 10_000,
    fixed: [
      { name: "100 sockets × 20 msg/s", sockets: 100, ratePerSec: 20, room: "general" },
      { name: "1000 sockets × 10 msg/s", sockets: 1000, ratePerSec: 10, room: "random" },
    ],
    senders: 10,
    sweep: { sockets: 100, room: "typescript", levels: [20, 50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000], warmupMs: 2000, measureMs: 5000 },
    memory: { sockets: 1000, room: "running", idleMs: 15_000 },
    dm: { pairs: 10, ratePerSec: 20, background: { sockets: 100, ratePerSec: 20, room: "football" } },
    presence: { subscribers: 100, changes: 30, cleanDisconnects: 10, uncleanDisconnects: 5 },
    history: { messages: 100_000, room: "jazz", requests: 2000, concurrency: 4, pageSize: 50 },
    // Issue 14: message, edit and reaction fan-out (one sender, `ops` of each at `ratePerSec`) and room search.
    lifecycle: { receivers: 100, ops: 200, ratePerSec: 20, searchMessages: 100_000, searches: 300 },
  },
  smoke: {
    warmupMs: 300,
    measureMs: 1000,
    fixed: [
      { name: "10 sockets × 10 msg/s", sockets: 10, ratePerSec: 10, room: "general" },
      { name: "50 sockets × 10 msg/s", sockets: 50, ratePerSec: 10, room: "random" },
    ],
    senders: 5,
    sweep: { sockets: 20, room: "typescript", levels: [20, 60], warmupMs: 300, measureMs: 1000 },
    memory: { sockets: 50, room: "running", idleMs: 1000 },
    dm: { pairs: 3, ratePerSec: 10, background: { sockets: 10, ratePerSec: 10, room: "football" } },
    presence: { subscribers: 10, changes: 5, cleanDisconnects: 2, uncleanDisconnects: 1 },
    history: { messages: 1000, room: "jazz", requests: 100, concurrency: 4, pageSize: 50 },
    lifecycle: { receivers: 20, ops: 20, ratePerSec: 20, searchMessages: 2000, searches: 30 },
  },
};

/** Pass/fail thresholds of issue 8 (ratios are taken in the same run). */
export const TARGETS_SPEC = {
  broadcastP99VsBare: 1.2,
  sustainedVsBare: 3,
  sustainedVsSio1: 1,
  presenceP99Ms: 100,
  dmP99Ms: 50,
  sustainedP99Ms: 200,
};
