// A minimal Chrome DevTools Protocol client over the inspector of a `wrangler dev` (its
// `--inspector-port`; it takes one client at a time): the memory scenario reads the workers isolate's
// heap through it, bench/profile.mjs profiles. workerd's inspector does not answer
// `HeapProfiler.collectGarbage`, and a heap snapshot (which collects first) leaves the process
// tens of KiB per socket larger, so no reading here forces a collection.

/** Connects to the first inspector target at `base` (http://127.0.0.1:<port>). */
export async function cdp(base) {
  const list = await (await fetch(`${base}/json`)).json();
  // The inspector proxy of `wrangler dev` wants a local Origin.
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { headers: { Origin: "http://127.0.0.1" } });
  await new Promise((res, rej) => (ws.addEventListener("open", res, { once: true }), ws.addEventListener("error", rej, { once: true })));
  let next = 1;
  const waiting = new Map();
  ws.addEventListener("message", (ev) => {
    const m = JSON.parse(ev.data);
    if (m.id && waiting.has(m.id)) {
      const { res, rej } = waiting.get(m.id);
      waiting.delete(m.id);
      m.error ? rej(new Error(JSON.stringify(m.error))) : res(m.result);
    }
  });
  return {
    call: (method, params = {}) =>
      new Promise((res, rej) => {
        const id = next++;
        waiting.set(id, { res, rej });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** The isolate's heap usage (`{ usedSize, totalSize }`, bytes, no collection), or null. */
export async function heapUsage(base, timeoutMs = 10_000) {
  let c = null;
  let timer;
  try {
    c = await cdp(base);
    return await Promise.race([c.call("Runtime.getHeapUsage"), new Promise((res) => (timer = setTimeout(() => res(null), timeoutMs)))]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    c?.close();
  }
}
