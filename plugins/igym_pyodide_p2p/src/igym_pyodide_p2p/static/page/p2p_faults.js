// The seeded fault hook of the pyodide_p2p runtime's transport (tests and benches only): around
// every send to the partner, on either route, when `window.__igymP2PFaults = {seed, delay_ms,
// jitter_ms, loss, duplicate?, reorder?}` was set before the runtime started. Used by the page
// (p2p.js: relay sends, and DataChannel sends when the channel stays on the page) and by the worker
// (worker.js: DataChannel sends once the channel was handed to it).

/** mulberry32: a small seeded generator in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeded fault hook: wraps `send(bytes)`; counts what it did in `stats`. */
export function faultySend(send, faults, stats) {
  const random = seededRandom(Number(faults.seed) || 1);
  const delay = Math.max(0, Number(faults.delay_ms) || 0);
  const jitter = Math.max(0, Number(faults.jitter_ms) || 0);
  const loss = Math.min(1, Math.max(0, Number(faults.loss) || 0));
  const duplicate = Math.min(1, Math.max(0, Number(faults.duplicate) || 0));
  const reorder = Math.min(1, Math.max(0, Number(faults.reorder) || 0));
  const later = (bytes, ms) => {
    if (ms <= 0) send(bytes);
    else setTimeout(() => send(bytes), ms);
  };
  return (bytes) => {
    stats.offered += 1;
    if (random() < loss) {
      stats.dropped += 1;
      return;
    }
    let ms = delay + (jitter ? (random() * 2 - 1) * jitter : 0);
    if (reorder && random() < reorder) {
      ms += delay || 20;
      stats.reordered += 1;
    }
    later(bytes, Math.max(0, ms));
    if (duplicate && random() < duplicate) {
      stats.duplicated += 1;
      later(bytes, Math.max(0, ms + (jitter ? random() * jitter : 1)));
    }
  };
}
