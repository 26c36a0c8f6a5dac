// Real WebSocket clients (Node's built-in WebSocket) for every target. Our service and the bare
// Durable Object speak JSON text frames; the socket.io peers get the same frames wrapped in the
// engine.io v4 / socket.io v5 text framing, spoken directly over the WebSocket so the load generator
// does the same small amount of work per frame for every target (no socket.io-client decoding).

/**
 * Opens one socket. `onFrame(raw)` gets each server frame's raw text (for socket.io, the `42[...]`
 * event packet). Resolves once the socket can send (socket.io: namespace connected).
 */
export function openSocket(url, { protocols, sio = false, timeoutMs = 15_000, keepalive = null } = {}) {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    const client = {
      ws,
      onFrame: null,
      closed: false,
      send: sio ? (json) => ws.send(`42["frame",${json}]`) : (json) => ws.send(json),
      close: () => {
        try {
          ws.close(1000, "bench done");
        } catch {}
      },
    };
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`socket ${url.replace(/token=[^&]+/, "token=…")} did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    const ready = () => {
      clearTimeout(timer);
      resolve(client);
    };
    ws.addEventListener("error", () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url.split("?")[0]} failed`));
    });
    // Like a real client, keep the socket alive while it only listens: the service closes sockets
    // that send nothing for PRESENCE_TIMEOUT_MS (its heartbeat sweep).
    const ka = keepalive ? setInterval(() => ws.readyState === 1 && ws.send(keepalive.frame), keepalive.everyMs) : null;
    ws.addEventListener("close", () => {
      client.closed = true;
      if (ka) clearInterval(ka);
    });
    if (!sio) {
      ws.addEventListener("message", (ev) => client.onFrame?.(ev.data));
      ws.addEventListener("open", ready, { once: true });
      return;
    }
    ws.addEventListener("message", (ev) => {
      const raw = ev.data;
      const c = raw.charCodeAt(0);
      if (c === 52 /* 4: socket.io packet */) {
        if (raw.charCodeAt(1) === 48 /* 0: CONNECT */) ready();
        else client.onFrame?.(raw);
      } else if (c === 50 /* 2: ping */) ws.send("3");
      else if (c === 48 /* 0: engine.io open */) ws.send("40");
    });
  });
}

/** Opens `count` sockets through `open(i)`, `concurrency` at a time, reporting progress. */
export async function openMany(count, open, { concurrency = 50, onProgress } = {}) {
  const out = new Array(count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
      done++;
      onProgress?.(done, count);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } catch (e) {
    for (const c of out) c?.close();
    throw e;
  }
  return out;
}

/** Resolves with the first raw frame of `client` that satisfies `pred`, or rejects after `timeoutMs`. */
export function nextFrame(client, pred, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const prev = client.onFrame;
    const t = setTimeout(() => {
      client.onFrame = prev;
      reject(new Error("timed out waiting for a frame"));
    }, timeoutMs);
    client.onFrame = (raw) => {
      if (pred(raw)) {
        clearTimeout(t);
        client.onFrame = prev;
        resolve(raw);
      }
    };
  });
}
