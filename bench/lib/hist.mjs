// Latency histograms (HDR, microsecond resolution, 3 significant digits) and their summaries.
import * as hdr from "hdr-histogram-js";

/** A histogram of latencies in microseconds, up to 10 minutes. */
export function newHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** p50/p95/p99/max in milliseconds (3 decimals) and the count. */
export function summarize(h) {
  if (h.totalCount === 0) return { count: 0, p50: null, p95: null, p99: null, max: null };
  const ms = (us) => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
  };
}
