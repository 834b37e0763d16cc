// The page side that both browser runtimes share (`pyodide` in runtime.js, `pyodide_p2p` in
// p2p.js): the game steps in a Web Worker (worker.js) under Pyodide; the page draws its frames with
// the shared game shell, passes the keys to it, and streams its step batches to the server,
// re-sending the ones not yet acknowledged after a reconnect.
//
// createPyodideGame(host, options) does the work. The host is what the game shell gives a runtime:
//   host.send(message)               a message to the server
//   host.onMessage(type, fn) -> off  server messages of a type
//   host.drawFrame(frame)            draw a `frame` message (keyframe/delta + hud), as for the server
//   host.stage                       the element the canvas is in (the loader is shown over it)
//   host.scene                       the scene's client view
//   host.showError(title, text)      (optional) show that the game cannot go on
// and the game calls back with keys: game.keys(held) (held keys, oldest first), game.press(keys).
//
// options (all optional): manifestUrl, workerUrl, onnxModule, firstBatch, batchIntervalMs;
//   mode              "pyodide" (default) or "p2p": passed to the worker in its `load` message;
//   bench             (benches only) the worker measures what a bench reports (p2p: rollback time);
//   onWorkerMessage   fn(message): the worker's messages of types this module does not handle;
//   onLoaded          fn(): the worker loaded (after `runtime_loaded` was sent).
// The returned game also has game.toWorker(message, transfer?) (post to the worker once it is
// started; false when it could not be posted) and
// game.gameId() (the server's game id, or null before the first game_status).
//
// What to load: the scene view's `runtime_view.game` (the game spec the server built,
// igym_pyodide_p2p/game_spec.py) and igym-pyodide-p2p's manifest (Pyodide's URL, the scene's
// wheels), fetched from MANIFEST_URL.
//
// Server -> page: game_status, pyodide_episode {game_id, episode, seed, num_episodes, max_steps,
// fps, next_batch?, start_in_ms?}, batch_ack {game_id, batch} (every batch up to
// that number is stored), error {code: "bad_batch"}.
// Page -> server: runtime_loaded, runtime_load_failed, step_batch, episode_done, and rtt_echo {game_id, n,
// page_delay_ms} for each rtt_probe {game_id, n, t} (the server measures each page's round trip and
// takes out page_delay_ms, the time the probe waited for this page's busy main thread).

import { Loader } from "./loader.js";

const WORKER_URL = new URL("./worker.js", import.meta.url);
const ONNX_MODULE = "/plugins/onnx/igym_onnx.js";
export const MANIFEST_URL = "/plugins/pyodide_p2p/manifest.json";
/** What the page's own delay is rounded to in `rtt_echo.page_delay_ms` (ms). */
const PAGE_DELAY_DECIMALS = 2;
/** The longest page delay an echo may claim (the server refuses a larger one: igym_core.builtin.rtt_echo). */
const MAX_PAGE_DELAY_MS = 60_000;
/** How often the main thread notes that it is free (ms): a probe's wait is at most the time since. */
const FREE_TICK_MS = 50;

/** The worker's load plan: the manifest's shared parts and the scene's own entry. */
export async function loadPlan(sceneId, manifestUrl = MANIFEST_URL) {
  const response = await fetch(manifestUrl, { cache: "no-cache" });
  if (!response.ok) throw new Error(`${manifestUrl}: HTTP ${response.status}`);
  const manifest = await response.json();
  const scene = (manifest.scenes || {})[sceneId];
  if (!scene) throw new Error(`the manifest has no packages for scene ${sceneId}`);
  return {
    pyodide: manifest.pyodide,
    micropip: manifest.micropip,
    index_url: manifest.index_url,
    extra_index_url: manifest.extra_index_url,
    // The worker starts from its content-hashed URL: a worker runs under the policy its script was
    // served with, and the plugin's own responses allow the extra index (when one is set).
    worker_url: manifest.static && manifest.static.base_url ? `${manifest.static.base_url}worker.js` : null,
    ...scene,
  };
}

function stageSizes(plan, spec) {
  const sizes = { runtime: 0, packages: 0, env: 0, model: 0 };
  if (plan && plan.pyodide) sizes.runtime = plan.pyodide.bytes || 0;
  for (const wheel of (plan && plan.wheels) || []) sizes.packages += wheel.bytes || 0;
  for (const bot of Object.values((spec && spec.bots) || {})) {
    if (bot.kind === "onnx" && bot.onnx && bot.onnx.model) sizes.model += bot.onnx.model.byteLength || bot.onnx.model.length || 0;
  }
  // onnxruntime-web, loaded once for every ONNX bot.
  const ortBytes = Object.values((spec && spec.bots) || {}).map((b) => (b.onnx && b.onnx.runtime_bytes) || 0);
  sizes.model += Math.max(0, ...ortBytes);
  return sizes;
}

export function createPyodideGame(host, options = {}) {
  const state = {
    game_id: null,
    phase: null,
    stage: null,
    loaded: false,
    load_failed: null,
    load_ms: null,
    stages: null,
    episode: 0,
    frames: 0,
    batches_sent: 0,
    batches_acked: 0,
    batches_refused: 0,
    resent: 0,
    unacked: 0,
    episodes_done: 0,
    ticks: 0,
    ticks_skipped: 0,
    rtt_echoes: 0,
    failed: null,
  };
  if (typeof window !== "undefined" && window.igym && window.igym.state) window.igym.state.pyodide = state;
  else if (typeof window !== "undefined") window.__igymPyodide = state;

  let worker = null;
  let loader = null;
  let alive = true;
  let firstFrameDrawn = false;
  /** Batches sent and not yet acknowledged, by number (re-sent in order after a reconnect). */
  const unacked = new Map();
  /** episode_done messages the server may not have seen (dropped once it issues a later episode). */
  const pendingDone = [];
  let heldNow = [];

  const offs = [];
  const on = (type, fn) => offs.push(host.onMessage(type, fn));

  const startWorker = (setup) => {
    if (worker || !alive) return;
    const { spec, plan } = setup;
    loader = new Loader(host.stage, stageSizes(plan, spec));
    worker = new Worker(options.workerUrl || plan.worker_url || WORKER_URL, { type: "module", name: "igym-pyodide" });
    worker.onmessage = (event) => onWorker(event.data || {});
    worker.onerror = (event) => {
      event.preventDefault();
      const message = `the game's worker failed: ${event.message || "unknown error"}`;
      if (!state.loaded) loadFailed(state.stage || "runtime", message);
      else failed(message);
    };
    worker.postMessage({
      type: "load",
      mode: options.mode || "pyodide",
      bench: Boolean(options.bench),
      plan,
      spec,
      gameId: state.game_id,
      firstBatch: options.firstBatch || 1,
      onnxModule: options.onnxModule || ONNX_MODULE,
      batchIntervalMs: options.batchIntervalMs || spec.batch_interval_ms || 500,
    });
    if (heldNow.length) worker.postMessage({ type: "keys", held: heldNow });
  };

  const loadFailed = (stage, message) => {
    state.load_failed = { stage, message };
    if (!loader) loader = new Loader(host.stage, {});
    loader.fail(stage, message);
    host.send({ type: "runtime_load_failed", game_id: state.game_id, stage, message: String(message).slice(0, 500) });
  };

  const failed = (message) => {
    state.failed = message;
    console.error("igym: the game stopped:", message);
    host.showError?.(
      "The game stopped",
      "Something went wrong in the game. Please reload the page; if this keeps happening, please contact the researcher.",
    );
  };

  const sendBatch = (batch) => {
    unacked.set(batch.batch, batch);
    state.unacked = unacked.size;
    state.batches_sent += 1;
    host.send(batch);
  };

  const onWorker = (message) => {
    if (!alive) return;
    switch (message.type) {
      case "stage":
        state.stage = message.stage;
        loader?.begin(message.stage);
        break;
      case "progress":
        loader?.progress(message.stage, message.loaded, message.total);
        break;
      case "loaded":
        state.loaded = true;
        state.load_ms = message.ms;
        state.stages = message.stages;
        // The loader gives way to the shell's own overlays (the countdown comes next).
        loader?.remove();
        loader = null;
        host.send({ type: "runtime_loaded", game_id: state.game_id, ms: message.ms, stages: message.stages });
        options.onLoaded?.();
        break;
      case "load_failed":
        loadFailed(message.stage, message.message);
        break;
      case "frame":
        state.frames += 1;
        host.drawFrame(message.frame);
        if (!firstFrameDrawn) {
          firstFrameDrawn = true;
          loader?.remove();
          loader = null;
        }
        break;
      case "batch":
        sendBatch(message.batch);
        break;
      case "episode_done":
        state.episodes_done += 1;
        state.ticks = message.ticks;
        state.ticks_skipped = message.skipped;
        state.episode_started_ms = message.startedMs;
        state.period_ms = message.periodMs;
        pendingDone.push(message.message);
        host.send(message.message);
        break;
      case "failed":
        failed(message.message);
        break;
      default:
        options.onWorkerMessage?.(message);
        break;
    }
  };

  const forGame = (msg) => state.game_id !== null && msg.game_id === state.game_id;

  const spec = host.scene && host.scene.runtime_view ? host.scene.runtime_view.game : null;
  let setup = null;
  let pendingFailure = null;
  const planned = spec
    ? loadPlan(host.scene.scene_id, options.manifestUrl).then((plan) => {
        setup = { spec, plan };
        if (state.game_id !== null) startWorker(setup);
      })
    : Promise.reject(new Error("the scene view has no game spec (runtime_view.game)"));
  planned.catch((err) => {
    state.stage = "runtime";
    const report = () => loadFailed("runtime", `the game's files could not be found: ${err.message || err}`);
    if (state.game_id !== null) report();
    else pendingFailure = report;
  });

  on("game_status", (msg) => {
    if (typeof msg.game_id === "string" && msg.game_id && state.game_id === null) {
      state.game_id = msg.game_id;
      if (setup) startWorker(setup);
      else if (pendingFailure) pendingFailure();
    }
    if (!forGame(msg)) return;
    state.phase = msg.phase;
    if (msg.phase === "ended") {
      worker?.postMessage({ type: "stop", reason: "game_ended" });
      pendingDone.length = 0;
    }
  });
  on("pyodide_episode", (msg) => {
    if (!forGame(msg) || !worker) return;
    state.episode = msg.episode;
    // The server has taken every earlier episode's end: no need to repeat those.
    for (let i = pendingDone.length - 1; i >= 0; i--) if (pendingDone[i].episode < msg.episode) pendingDone.splice(i, 1);
    // Nor batches of an earlier episode: that episode is over on the server (a refused batch can end
    // one early), and the new episode's batches are numbered from `next_batch`, which may reuse theirs.
    for (const [number, batch] of [...unacked]) if (batch.episode < msg.episode) unacked.delete(number);
    state.unacked = unacked.size;
    worker.postMessage({
      type: "episode",
      episode: msg.episode,
      seed: msg.seed,
      max_steps: msg.max_steps,
      fps: msg.fps,
      next_batch: typeof msg.next_batch === "number" ? msg.next_batch : null,
      start_in_ms: typeof msg.start_in_ms === "number" ? msg.start_in_ms : 0,
    });
  });
  // How long a probe waited for this page's main thread (drawing, scripts) before its handler ran,
  // as the server runtime's page estimates it (frontend/src/runtimes/server.ts): `lag` is the page's
  // clock at the handler minus the server's time `t` in the probe, i.e. the network's one-way time,
  // the wait here and the clocks' offset; the network's time and the offset are about the same for
  // every probe, so a probe's lag above the smallest lag of the game's probes so far is its wait. An
  // event's `timeStamp` does not show that wait (the browser makes the event when the main thread
  // gets to it). The estimate is capped by the time since the main thread last ran a timer (it was
  // busy at most that long), so that a downlink that turns slow, or clocks that drift apart, are not
  // taken for the page's wait: what the page cannot show it waited stays in the network's share.
  let minLag = Infinity;
  let lagGame = null;
  let lastFree = performance.now();
  const freeTimer = setInterval(() => {
    lastFree = performance.now();
  }, FREE_TICK_MS);
  const pageDelayOf = (t) => {
    if (typeof t !== "number" || !Number.isFinite(t)) return null;
    if (lagGame !== state.game_id) {
      lagGame = state.game_id;
      minLag = Infinity;
    }
    const now = performance.now();
    const lag = performance.timeOrigin + now - t;
    if (lag < minLag) minLag = lag;
    const waited = Math.min(lag - minLag, now - lastFree, MAX_PAGE_DELAY_MS);
    return Number(Math.max(0, waited).toFixed(PAGE_DELAY_DECIMALS));
  };
  on("rtt_probe", (msg) => {
    // Answered at once and nothing else: the server measures the round trip (its `rtt_ms`, the
    // admin dashboard's, and the scene's slow-connection rule) and takes `page_delay_ms` out of it.
    if (!forGame(msg) || typeof msg.n !== "number" || !Number.isInteger(msg.n)) return;
    const echo = { type: "rtt_echo", game_id: state.game_id, n: msg.n };
    const pageDelay = pageDelayOf(msg.t);
    if (pageDelay !== null) echo.page_delay_ms = pageDelay;
    host.send(echo);
    state.rtt_echoes += 1;
  });
  on("batch_ack", (msg) => {
    if (!forGame(msg) || typeof msg.batch !== "number") return;
    // Every batch up to this number is stored (the server acknowledges several at once).
    for (const number of [...unacked.keys()]) {
      if (number <= msg.batch) {
        unacked.delete(number);
        state.batches_acked += 1;
      }
    }
    state.unacked = unacked.size;
  });
  on("error", (msg) => {
    if (msg.code !== "bad_batch") return;
    state.batches_refused += 1;
    console.error("igym: the server refused a step batch:", msg.message);
    // A refused batch is not sent again (it would be refused again); the server recorded why.
    const match = /batch (\d+)/.exec(String(msg.message || ""));
    const number = typeof msg.batch === "number" ? msg.batch : match ? Number(match[1]) : null;
    if (number !== null) unacked.delete(number);
    state.unacked = unacked.size;
  });
  on("welcome", () => {
    // A new connection: whatever the server may not have received goes again, in order.
    queueMicrotask(() => {
      if (!alive) return;
      for (const number of [...unacked.keys()].sort((a, b) => a - b)) {
        host.send(unacked.get(number));
        state.resent += 1;
      }
      for (const done of pendingDone) host.send(done);
    });
  });

  return {
    state,
    /** Post a message to the worker (dropped before the worker started). */
    toWorker(message, transfer) {
      if (!worker) return false;
      try {
        worker.postMessage(message, transfer || []);
        return true;
      } catch (err) {
        // e.g. an object this browser cannot transfer to a worker
        return false;
      }
    },
    /** The server's id of this game (null before its first game_status). */
    gameId() {
      return state.game_id;
    },
    /** The keys held now (oldest press first), as the page's key input reports them. */
    keys(held) {
      heldNow = [...held];
      worker?.postMessage({ type: "keys", held: heldNow });
    },
    /** Key presses (press mode). */
    press(keys) {
      worker?.postMessage({ type: "press", keys: [...keys] });
    },
    /** The view was reset: draw every object again. */
    redraw() {
      worker?.postMessage({ type: "keyframe" });
    },
    destroy() {
      alive = false;
      clearInterval(freeTimer);
      for (const off of offs) off();
      worker?.terminate();
      worker = null;
      loader?.remove();
      loader = null;
    },
  };
}
