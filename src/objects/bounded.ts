/**
 * Bounded concurrency for fan-out by RPC. Pure: no Cloudflare imports.
 *
 * An object that starts one RPC per subscriber or per id with `Promise.all` holds that many
 * subrequests open at once; a pool of `limit` workers keeps the number in flight small whatever
 * the list length, at the cost of a few round trips more for long lists.
 */

/**
 * Maps `items` through `fn` with at most `limit` calls in flight; the results keep the order of
 * `items`. Rejects with the first rejection (the calls already started still run); callers that
 * must not fail catch inside `fn`.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  const n = Math.max(1, Math.min(Math.floor(limit) || 1, items.length));
  await Promise.all(Array.from({ length: items.length === 0 ? 0 : n }, worker));
  return results;
}
