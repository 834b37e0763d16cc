// The pyodide runtime's Web Worker: loads Pyodide and the game's Python, then steps the env at the
// scene's fps on drift-free deadlines, posting frames and step batches to the page.
//
// Started by runtime.js as a module worker. Messages from the page:
//   {type: "load", plan, spec, gameId, firstBatch, onnxModule, batchIntervalMs}
//   {type: "episode", episode, seed, max_steps, fps, next_batch, start_in_ms}   play this episode
//                                                    (the server issued it; next_batch: its numbering;
//                                                    start_in_ms: show its first frame now, step from then)
//   {type: "keys", held: [...]}                      the keys held now (oldest press first)
//   {type: "press", keys: [...]}                     key presses (press mode)
//   {type: "keyframe"}                               post every current object again
//   {type: "stop", reason}                           the game ended: no more steps
// Messages to the page:
//   {type: "progress", stage, loaded, total}          bytes of the stage so far (total may be 0)
//   {type: "stage", stage}                            a loading stage began
//   {type: "loaded", ms, stages: {runtime_ms, packages_ms, env_ms, model_ms}}
//   {type: "load_failed", stage, message}
//   {type: "frame", frame}                            a `frame` message as the server sends it
//   {type: "batch", batch}                            a `step_batch` message for the server
//   {type: "episode_done", message, ticks, skipped, startedMs, periodMs}
//                                                    an `episode_done` message (after its last batch);
//                                                    the game's ticks, skipped deadlines, the episode's
//                                                    start (epoch ms: deadline k is start + k * period)
//   {type: "failed", message}                         stepping failed; the game cannot go on
//
// The p2p mode (`load` with mode "p2p", the `pyodide_p2p` runtime, p2p.js): the same load, then the
// game is igym_pyodide_p2p.browser.p2p_game.P2PBrowserGame, built on `p2p_start`, ticked on
// drift-free deadlines whose period the engine stretches (`period_scale`, time sync). More messages:
//   page -> worker: {type: "p2p_start", seat, partner_seat, authority, input_delay, window,
//                    hash_every, silent_notice_ms, lost_after_ms}   build the game (after `loaded`)
//                   {type: "handshake", on}                  ping the partner before the first episode
//                   {type: "packet", data}                   bytes from the partner (any route)
//                   {type: "partner_left", policy}           play on with the partner's seat's bot
//                                                            (policy: its spec) or stop (null)
//                   {type: "channel", channel, faults}       the WebRTC DataChannel, transferred: the
//                                                            worker sends and receives on it itself
//                                                            (off the page's busy main thread)
//                   {type: "route", route}                   "direct": send on that channel once open;
//                                                            "relay": send on the worker's relay socket
//   (p2p_start also carries relay_url, relay_key and faults: the worker opens its own WebSocket to the
//   server's relay (p2p_relay_socket.py) so that relayed packets never wait for the page's busy main
//   thread; while it is not open, relayed packets go by the page's socket as before.)
//   worker -> page: {type: "p2p_ready"}                       the game is built
//                   {type: "send", packets: [bytes, ...]}     engine packets for the partner
//                   {type: "p2p_events", events: [...]}       engine events (-> `p2p_event`)
//                   {type: "waiting", waiting}                 null | "window" | "partner" (on change)
//                   {type: "channel", open}                   the transferred channel opened / closed
//                   {type: "p2p_stats", stats, input_delay, rtt_ms, fps, ticks, skipped}  about once a second
//
// Timing is the server runtime's rule: deadline k is start + k * period; a tick that begins more
// than one period late skips the deadlines it missed (counted in `skipped`) instead of running a
// burst of catch-up steps.
//
// The load plan (`plan`): igym-pyodide-p2p's manifest (/plugins/pyodide_p2p/manifest.json) with the
// scene's entry merged in: {pyodide: {index_url, bytes}, micropip: {url}, extra_index_url,
// wheels: [{project, filename, url, bytes}], extra: [{project}]}. igym's wheels are fetched here
// (with progress) and unpacked into site-packages (faster than micropip, which is loaded only for
// `extra` packages, installed from the extra index).

import { faultySend } from "./p2p_faults.js";

const SITE = "/lib/python3.14/site-packages";
let pyodide = null;
let game = null; // the Python BrowserGame
let jsBots = new Map(); // agent -> igym_onnx browser policy
let jsonDumps = null;
let toPlain = null;
let settings = { batchIntervalMs: 1000 };
/** The keys held now (kept while loading: they apply from the game's first step). */
let heldKeys = [];
/** The p2p mode's state (null in the pyodide mode). */
let p2p = null;
/** How many periods late a p2p tick may be and still catch up frame by frame (beyond: skip). */
const P2P_CATCH_UP = 3;

const clock = {
  period: 1000 / 30,
  start: 0,
  k: 0,
  timer: 0,
  running: false,
  lastBatch: 0,
  next: 0, // the p2p mode's next deadline (its period varies)
  skipped: 0,
  ticks: 0,
};

const now = () => performance.now();
const epochMs = () => Math.round((performance.timeOrigin + performance.now()) * 10) / 10;

function post(message, transfer) {
  self.postMessage(message, transfer || []);
}

async function fetchWithProgress(url, stage, done, total) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    chunks.push(value);
    size += value.length;
    post({ type: "progress", stage, loaded: done + size, total });
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * While Pyodide loads, every fetch's body is counted as it streams in (its wasm and standard
 * library are most of the bytes), so the loader's bar moves during the runtime stage without
 * downloading anything twice. The response keeps its status and headers (WebAssembly's streaming
 * compile needs the content type).
 */
function countingFetch(stage, total) {
  const realFetch = self.fetch;
  let loaded = 0;
  self.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    if (!response.body) return response;
    const reader = response.body.getReader();
    const stream = new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        loaded += value.length;
        post({ type: "progress", stage, loaded: Math.min(loaded, total || loaded), total: total || loaded });
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(stream, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return {
    restore() {
      self.fetch = realFetch;
    },
  };
}

function sizeOf(entry) {
  return (entry && (entry.bytes ?? entry.size)) || 0;
}

function pyToJs(value) {
  if (value === null || value === undefined || typeof value !== "object") return value;
  const js = value.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
  value.destroy();
  return js;
}

async function load(message) {
  const { plan, spec } = message;
  settings.batchIntervalMs = message.batchIntervalMs || spec.batch_interval_ms || 500;
  const stages = { runtime_ms: 0, packages_ms: 0, env_ms: 0, model_ms: 0 };
  const started = now();
  let stage = "runtime";
  try {
    // --- runtime: Pyodide itself ---------------------------------------------------------------
    post({ type: "stage", stage });
    let t = now();
    const indexUrl = new URL(plan.pyodide.index_url, self.location.href).href;
    const { loadPyodide } = await import(`${indexUrl}pyodide.mjs`);
    const counted = countingFetch(stage, sizeOf(plan.pyodide));
    try {
      pyodide = await loadPyodide({ indexURL: indexUrl, checkAPIVersion: true });
    } finally {
      counted.restore();
    }
    post({ type: "progress", stage, loaded: sizeOf(plan.pyodide), total: sizeOf(plan.pyodide) });
    stages.runtime_ms = Math.round(now() - t);

    // --- packages: igym's wheels (the env's package, its pure-Python dependencies, igym's lean
    // browser build), fetched with progress and unpacked into site-packages; packages from the
    // extra index (not pure Python) with micropip ----------------------------------------------
    stage = "packages";
    post({ type: "stage", stage });
    t = now();
    const wheels = plan.wheels || [];
    const total = wheels.reduce((sum, w) => sum + sizeOf(w), 0);
    let done = 0;
    for (const wheel of wheels) {
      const bytes = await fetchWithProgress(new URL(wheel.url, self.location.href).href, stage, done, total);
      done += sizeOf(wheel) || bytes.length;
      const format = String(wheel.filename || wheel.url).endsWith(".whl") ? "wheel" : "zip";
      pyodide.unpackArchive(bytes, format, { extractDir: SITE });
    }
    const extra = (plan.extra || []).map((p) => p.project);
    if (extra.length) {
      if (!plan.extra_index_url) throw new Error(`packages ${extra.join(", ")} need the extra index, which is not set`);
      await pyodide.loadPackage(new URL(plan.micropip.url, self.location.href).href);
      const micropip = pyodide.pyimport("micropip");
      await micropip.install.callKwargs(extra, { index_urls: [plan.extra_index_url] });
      micropip.destroy();
    }
    pyodide.runPython("import importlib; importlib.invalidate_caches()");
    stages.packages_ms = Math.round(now() - t);

    // --- env: the stepping code, the env, its renderer and Python bots ----------------------------
    stage = "env";
    post({ type: "stage", stage });
    t = now();
    const { onnxSpec, pythonSpec } = splitSpec(spec);
    if (message.mode === "p2p") {
      loadP2P(pythonSpec, message);
      stages.env_ms = Math.round(now() - t);
      post({ type: "loaded", ms: Math.round(now() - started), stages });
      return;
    }
    const module = pyodide.pyimport("igym_pyodide_p2p.browser.stepper");
    const specModule = pyodide.pyimport("igym_pyodide_p2p.browser.spec");
    const json = pyodide.pyimport("json");
    jsonDumps = json.dumps;
    const parsed = specModule.GameSpec.from_json(json.loads(JSON.stringify(pythonSpec)));
    game = module.BrowserGame.callKwargs(parsed, { game_id: message.gameId, first_batch: message.firstBatch || 1 });
    parsed.destroy();
    specModule.destroy();
    game.set_held(heldKeys);
    toPlain = (value) => pyToJs(value);
    stages.env_ms = Math.round(now() - t);

    // --- model: ONNX bots, through igym_onnx's browser module --------------------------------------
    stage = "model";
    post({ type: "stage", stage });
    t = now();
    const onnxEntries = Object.entries(onnxSpec);
    if (onnxEntries.length) {
      // onnxruntime-web's WebAssembly (most of this stage's bytes) is counted as it streams in.
      const runtimeBytes = Math.max(0, ...onnxEntries.map(([, b]) => b.runtime_bytes || 0));
      const counted = countingFetch(stage, runtimeBytes);
      try {
        const onnx = await import(new URL(message.onnxModule || "/plugins/onnx/igym_onnx.js", self.location.href).href);
        for (const [agent, bot] of onnxEntries) {
          const policy = await onnx.createPolicy(bot.model, bot.config, { seed: 0, actionStart: bot.action_start || 0 });
          jsBots.set(agent, policy);
        }
      } finally {
        counted.restore();
      }
    }
    stages.model_ms = Math.round(now() - t);
    post({ type: "loaded", ms: Math.round(now() - started), stages });
  } catch (err) {
    post({ type: "load_failed", stage, message: String((err && err.message) || err).slice(0, 2000) });
  }
}

/** The spec's ONNX models stay in JavaScript; Python gets the rest (JSON). */
function splitSpec(spec) {
  const onnxSpec = {};
  const bots = {};
  for (const [agent, bot] of Object.entries(spec.bots || {})) {
    if (bot.kind === "onnx") {
      const { model, config, action_start, runtime_bytes } = bot.onnx || {};
      onnxSpec[agent] = {
        model: model instanceof Uint8Array ? model : new Uint8Array(model || []),
        config,
        action_start,
        runtime_bytes,
      };
      bots[agent] = { ...bot, onnx: { config, sha256: bot.onnx && bot.onnx.sha256 } };
    } else {
      bots[agent] = bot;
    }
  }
  return { onnxSpec, pythonSpec: { ...spec, bots } };
}

// --- stepping -------------------------------------------------------------------------------

function startEpisode(message) {
  stopClock();
  // A new episode while steps of the last one wait for their batch: the server ended that episode
  // early (a refused batch) and wants none of them.
  toPlain(game.take_batch());
  // Absent values stay out (undefined is Python's None; a JS null would arrive as JsNull).
  const kwargs = {};
  if (typeof message.max_steps === "number") kwargs.max_steps = message.max_steps;
  if (typeof message.next_batch === "number") kwargs.next_batch = message.next_batch;
  const frame = toPlain(game.start_episode.callKwargs(message.episode, message.seed, kwargs));
  const seeds = toPlain(game.bot_seeds());
  for (const [agent, policy] of jsBots) policy.reset(seeds[agent] ?? 0);
  if (typeof message.fps === "number" && message.fps > 0) clock.period = 1000 / message.fps;
  post({ type: "frame", frame });
  // `start_in_ms`: the server issued the episode as its countdown began; its first frame shows under
  // the countdown (as the server runtime shows it) and the steps start when the countdown ends.
  const delay = typeof message.start_in_ms === "number" && message.start_in_ms > 0 ? message.start_in_ms : 0;
  clock.start = now() + delay;
  clock.k = 1;
  clock.lastBatch = clock.start;
  clock.running = true;
  schedule();
}

function schedule() {
  const deadline = clock.start + clock.k * clock.period;
  clock.timer = setTimeout(tick, Math.max(0, deadline - now()));
}

function stopClock() {
  clock.running = false;
  clearTimeout(clock.timer);
}

async function tick() {
  if (!clock.running) return;
  let deadline = clock.start + clock.k * clock.period;
  const late = now() - deadline;
  if (late < 0) {
    schedule();
    return;
  }
  if (late >= clock.period) {
    const missed = Math.floor(late / clock.period);
    clock.k += missed;
    clock.skipped += missed;
    deadline += missed * clock.period;
  }
  let result;
  try {
    let jsActions = null;
    if (jsBots.size) {
      const due = toPlain(game.js_due());
      if (due.length) {
        jsActions = {};
        for (const [agent, observation] of due) jsActions[agent] = await jsBots.get(agent).act(observation);
        if (!clock.running) return;
      }
    }
    const actions = jsActions ? pyodide.toPy(jsActions) : undefined;
    result = toPlain(game.step(epochMs(), actions));
    if (actions) actions.destroy();
  } catch (err) {
    stopClock();
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
    return;
  }
  clock.ticks += 1;
  post({ type: "frame", frame: result.frame });
  if (result.done) {
    stopClock();
    flush();
    post({
      type: "episode_done",
      message: toPlain(game.episode_done()),
      ticks: clock.ticks,
      skipped: clock.skipped,
      startedMs: performance.timeOrigin + clock.start,
      periodMs: clock.period,
    });
    return;
  }
  if (now() - clock.lastBatch >= settings.batchIntervalMs) flush();
  clock.k += 1;
  schedule();
}

function flush() {
  clock.lastBatch = now();
  const batch = toPlain(game.take_batch());
  if (batch) post({ type: "batch", batch });
}

// --- the p2p mode -------------------------------------------------------------------------------

/** Import the engine and the env's code now (a broken env fails the load, not the game's start);
 * the game itself is built on `p2p_start`, which says which seat this page plays. */
function loadP2P(pythonSpec, message) {
  const json = pyodide.pyimport("json");
  const glue = pyodide.runPython(`
from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.stepper import import_ref

def receive(game, data, now_ms):
    # data: a JsProxy of a Uint8Array (the partner's packet)
    return game.receive(data.to_bytes(), now_ms)

def resume_from(game, data):
    return game.resume_from(data.to_bytes())

def time_rollbacks(game):
    # Benches only: the time the engine spends in its rollbacks (load + resimulation), and the
    # frames they resimulated (the engine's on_rollback hook).
    totals = {"ms": 0.0, "frames": 0, "rollbacks": 0}
    def timed(ms, depth):
        totals["ms"] += ms
        totals["frames"] += depth
        totals["rollbacks"] += 1
    game.engine.on_rollback = timed
    return totals

def measure_resimulation(game, depth=8, repeats=100):
    # Benches only, before the first episode (which resets the env and the records): the cost of
    # one resimulated frame, as a rollback of depth frames does it (load the saved state once, then
    # per frame: step with both seats' inputs, save the state, a hash every 10th frame), after as
    # many rounds to warm V8 up. Microseconds per frame.
    import time
    game.env.reset(seed=0)
    both = [game.seat, game.partner_seat]
    inputs = [{seat: [action, 1, []] for seat in both} for action in game._actions]
    state = game.save()
    def rounds(n):
        started = time.perf_counter()
        for r in range(n):
            game.load(state)
            for frame in range(1, depth + 1):
                game.advance(frame, inputs[(r + frame) % len(inputs)], None)
                game.save()
                if frame % 10 == 0:
                    game.state_hash()
        return (time.perf_counter() - started) * 1e6 / (n * depth)
    rounds(repeats)
    return rounds(repeats)

import_ref
`);
  glue(pythonSpec.env_factory).destroy();
  glue.destroy();
  jsonDumps = json.dumps;
  toPlain = (value) => pyToJs(value);
  p2p = {
    json,
    specJson: pythonSpec,
    specClass: pyodide.pyimport("igym_pyodide_p2p.browser.spec").GameSpec,
    gameId: message.gameId,
    firstBatch: message.firstBatch || 1,
    module: pyodide.pyimport("igym_pyodide_p2p.browser.p2p_game"),
    receive: pyodide.globals.get("receive"),
    resumeFrom: pyodide.globals.get("resume_from"),
    /** This page reloaded mid-game: it waits for the partner's snapshot instead of an episode start. */
    resuming: false,
    resumeEpisode: null,
    snapshotTimer: 0,
    snapshotAllowed: false,
    snapshotBytes: null,
    timeRollbacks: pyodide.globals.get("time_rollbacks"),
    rollbackTimes: null,
    bench: Boolean(message.bench),
    handshakeTimer: 0,
    /** How long the partner's packets waited between the page and this worker (ms, the last 120). */
    hops: [],
    /** Ticks whose period the engine stretched (time sync), and by how much in all (ms). */
    stretched: 0,
    stretchedMs: 0,
    /** The DataChannel handed over by the page, and whether packets go on it (route "direct"). */
    channel: null,
    channelSend: null,
    route: null,
    direct: { sent: 0, received: 0, faults: null },
    /** The worker's own relay socket (route "relay"), its sends (through the fault hook) and counts. */
    relay: null,
    relaySend: null,
    relayStats: { open: false, sent: 0, received: 0, faults: null, opened: 0, closed: 0 },
    waiting: null,
    lastStats: 0,
    frames: 0,
    episodeStart: 0,
    episodeFrames: 0,
  };
}

function p2pStart(message) {
  if (!p2p || game) return;
  const kwargs = {
    game_id: p2p.gameId,
    seat: message.seat,
    partner_seat: message.partner_seat,
    authority: Boolean(message.authority),
    first_batch: p2p.firstBatch,
  };
  for (const name of ["input_delay", "window", "hash_every", "silent_notice_ms", "lost_after_ms", "max_state_bytes"]) {
    if (message[name] !== undefined && message[name] !== null) kwargs[name] = message[name];
  }
  try {
    // The server's spec names both human seats; this page's game is the one of its own seat.
    const spec = p2p.specClass.from_json(p2p.json.loads(JSON.stringify({ ...p2p.specJson, human_seat: message.seat })));
    game = p2p.module.P2PBrowserGame.callKwargs(spec, kwargs);
    spec.destroy();
    game.set_held(heldKeys);
    if (p2p.bench) {
      p2p.resimFrameUs = pyodide.globals.get("measure_resimulation")(game);
      p2p.rollbackTimes = p2p.timeRollbacks(game);
    }
  } catch (err) {
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
    return;
  }
  p2p.resuming = Boolean(message.resume);
  if (message.relay_url && message.relay_key) p2pOpenRelay(message.relay_url, message.relay_key, message.faults || null);
  post({ type: "p2p_ready" });
  if (p2p.resuming) p2pRequestSnapshot();
}

/** The reloaded page: the partner's snapshot arrived; play on from its state. */
function p2pResume(data) {
  let frame;
  try {
    frame = toPlain(p2p.resumeFrom(game, data));
  } catch (err) {
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
    return;
  }
  if (!frame) return;
  p2p.resuming = false;
  clearInterval(p2p.snapshotTimer);
  p2pHandshake(false);
  const episode = p2p.resumeEpisode || {};
  // The server's count of this page's batches goes on from where the old page left it.
  if (typeof episode.next_batch === "number") game.continue_batches_at(episode.next_batch);
  if (typeof episode.fps === "number" && episode.fps > 0) clock.period = 1000 / episode.fps;
  post({ type: "frame", frame }); // the engine reports its `resumed` event at the next tick
  clock.start = now();
  clock.next = clock.start + clock.period;
  clock.lastBatch = clock.start;
  p2p.episodeStart = clock.start - frame.step * clock.period;
  p2p.episodeFrames = frame.step;
  clock.running = true;
  p2pSchedule();
}

/** A reloaded page asks its partner for the snapshot with this packet until it resumes (the relay
 * may drop a packet; the partner answers only after the server said the page is back). */
const SNAPSHOT_REQUEST = new TextEncoder().encode('{"k":"igym_snapshot_request"}');

function isSnapshotRequest(data) {
  if (!data || data.length !== SNAPSHOT_REQUEST.length) return false;
  for (let i = 0; i < data.length; i++) if (data[i] !== SNAPSHOT_REQUEST[i]) return false;
  return true;
}

function p2pRequestSnapshot() {
  clearInterval(p2p.snapshotTimer);
  const started = now();
  const ask = () => {
    if (!p2p.resuming || now() - started > 30000) {
      clearInterval(p2p.snapshotTimer);
      return;
    }
    p2pSend([SNAPSHOT_REQUEST]);
  };
  ask();
  p2p.snapshotTimer = setInterval(ask, 300);
}

/** The partner asked for this page's snapshot (it reloaded, and the server said it is back): one
 * snapshot for its new page (taking it retires the old page's session), sent again on each ask. */
function p2pAnswerSnapshotRequest() {
  if (!p2p.snapshotAllowed || !game) return;
  try {
    // One packet, or its chunks (a state larger than a packet); all of them again on each ask.
    if (!p2p.snapshotBytes) p2p.snapshotBytes = toPlain(game.snapshot_packets());
    p2pSend(p2p.snapshotBytes);
  } catch (err) {
    // This page's state cannot be given (larger than max_state_bytes): it plays on; recorded once,
    // and the partner's new page, which cannot resume, falls to the partner-left rule.
    p2p.snapshotAllowed = false;
    const message = String((err && err.message) || err).slice(0, 500);
    post({ type: "p2p_events", events: [{ kind: "snapshot_refused", episode: 0, frame: 0, detail: { message } }] });
  }
}

/** Engine packets for the partner: on the DataChannel this worker holds (route "direct"), on this
 * worker's relay socket (route "relay"), else to the page (its channel, or its socket's relay). */
function p2pSend(packets) {
  if (!packets || !packets.length) return;
  const channel = p2p.channel;
  if (p2p.route === "direct" && channel && channel.readyState === "open") {
    try {
      for (const packet of packets) p2p.channelSend(packet);
      return;
    } catch (err) {
      // a closing channel: these go by the page
    }
  }
  const relay = p2p.relay;
  if (p2p.route === "relay" && relay && relay.readyState === WebSocket.OPEN) {
    try {
      for (const packet of packets) p2p.relaySend(packet);
      return;
    } catch (err) {
      // a closing socket: these go by the page
    }
  }
  post({ type: "send", packets, t: epochMs() });
}

/** The worker's own relay socket: the key first (text), then one engine packet per binary message,
 * both ways. Closed (the server retired it, the game ended, the network): the page's socket relays. */
function p2pOpenRelay(path, key, faults) {
  let socket;
  try {
    const url = new URL(path, self.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url.href);
  } catch (err) {
    return;
  }
  socket.binaryType = "arraybuffer";
  p2p.relay = socket;
  const stats = p2p.relayStats;
  const raw = (bytes) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(bytes);
    stats.sent += 1;
  };
  if (faults) {
    // The page's fault hook, with a seed of its own for this socket's sends.
    stats.faults = { offered: 0, dropped: 0, duplicated: 0, reordered: 0 };
    p2p.relaySend = faultySend(raw, { ...faults, seed: (Number(faults.seed) || 1) ^ 0x2545f491 }, stats.faults);
  } else {
    p2p.relaySend = raw;
  }
  socket.onopen = () => {
    socket.send(key);
    stats.open = true;
    stats.opened += 1;
  };
  socket.onclose = () => {
    stats.open = false;
    stats.closed += 1;
    if (p2p.relay === socket) p2p.relay = null;
  };
  socket.onmessage = (event) => {
    if (!(event.data instanceof ArrayBuffer)) return;
    stats.received += 1;
    p2pReceive(new Uint8Array(event.data));
  };
}

function p2pChannel(channel, faults) {
  p2p.channel = channel;
  channel.binaryType = "arraybuffer";
  const raw = (bytes) => {
    if (channel.readyState !== "open") return;
    channel.send(bytes);
    p2p.direct.sent += 1;
  };
  if (faults) {
    // The page's fault hook, with a seed of its own for this worker's sends.
    p2p.direct.faults = { offered: 0, dropped: 0, duplicated: 0, reordered: 0 };
    p2p.channelSend = faultySend(raw, { ...faults, seed: (Number(faults.seed) || 1) ^ 0x5bd1e995 }, p2p.direct.faults);
  } else {
    p2p.channelSend = raw;
  }
  // A reconnection (after a reload) hands over a new channel: the old one's events no longer count.
  channel.onopen = () => {
    if (p2p.channel === channel) post({ type: "channel", open: true });
  };
  channel.onclose = () => {
    if (p2p.channel !== channel) return;
    if (p2p.route === "direct") p2p.route = null;
    post({ type: "channel", open: false });
  };
  channel.onmessage = (event) => {
    if (!(event.data instanceof ArrayBuffer)) return;
    p2p.direct.received += 1;
    p2pReceive(new Uint8Array(event.data));
  };
}

/** Packets, events and the waiting state of one engine call's result. */
function p2pOutput(out) {
  p2pSend(out.send);
  if (out.events && out.events.length) post({ type: "p2p_events", events: out.events });
  // Python's None arrives as undefined: not waiting.
  const waiting = out.waiting ?? null;
  if (waiting !== p2p.waiting) {
    p2p.waiting = waiting;
    post({ type: "waiting", waiting });
  }
}

function p2pHandshake(on) {
  clearInterval(p2p.handshakeTimer);
  p2p.handshakeTimer = 0;
  if (!on || !game) return;
  const ping = () => {
    if (clock.running) return;
    try {
      p2pSend(toPlain(game.handshake(epochMs())));
      p2pStats(true);
    } catch (err) {
      post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
      clearInterval(p2p.handshakeTimer);
    }
  };
  ping();
  p2p.handshakeTimer = setInterval(ping, 100);
}

function p2pReceive(data) {
  if (!game) return;
  if (isSnapshotRequest(data)) {
    p2pAnswerSnapshotRequest();
    return;
  }
  if (p2p.resuming) {
    p2pResume(data);
    return;
  }
  try {
    const events = toPlain(p2p.receive(game, data, epochMs()));
    if (events && events.length) post({ type: "p2p_events", events });
  } catch (err) {
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
  }
}

function p2pStartEpisode(message) {
  if (p2p.resuming) {
    // A reloaded page: the episode goes on from the partner's snapshot (its numbering from here).
    p2p.resumeEpisode = message;
    return;
  }
  stopClock();
  p2pHandshake(false);
  const kwargs = { episode: message.episode, seed: message.seed };
  if (typeof message.max_steps === "number") kwargs.max_steps = message.max_steps;
  if (typeof message.fps === "number") kwargs.fps = message.fps;
  if (typeof message.next_batch === "number") kwargs.next_batch = message.next_batch;
  let first;
  try {
    first = toPlain(game.start_episode.callKwargs(kwargs));
  } catch (err) {
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
    return;
  }
  if (typeof message.fps === "number" && message.fps > 0) clock.period = 1000 / message.fps;
  post({ type: "frame", frame: first && first.type === "frame" ? first : toPlain(game.keyframe()) });
  const delay = typeof message.start_in_ms === "number" && message.start_in_ms > 0 ? message.start_in_ms : 0;
  clock.start = now() + delay;
  clock.next = clock.start + clock.period;
  clock.lastBatch = clock.start;
  p2p.episodeStart = clock.start;
  p2p.episodeFrames = 0;
  clock.running = true;
  p2pStats(true);
  p2pSchedule();
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function p2pSchedule() {
  clock.timer = setTimeout(p2pTick, Math.max(0, clock.next - now()));
}

function p2pStats(force) {
  const t = now();
  if (!force && t - p2p.lastStats < 1000) return;
  p2p.lastStats = t;
  const elapsed = clock.running || p2p.episodeFrames ? (t - p2p.episodeStart) / 1000 : 0;
  post({
    type: "p2p_stats",
    stats: toPlain(game.stats),
    input_delay: game.input_delay,
    rtt_ms: game.rtt_ms === undefined ? null : game.rtt_ms,
    fps: elapsed > 0.5 ? p2p.episodeFrames / elapsed : null,
    ticks: clock.ticks,
    skipped: clock.skipped,
    page_to_worker_ms: median(p2p.hops),
    direct: p2p.direct,
    relay: p2p.relayStats,
    stretched: p2p.stretched,
    stretched_ms: Math.round(p2p.stretchedMs),
    rollback_time: p2p.rollbackTimes ? toPlain(p2p.rollbackTimes.copy()) : null,
    resim_frame_us: p2p.resimFrameUs ?? null,
  });
}

function p2pTick() {
  if (!clock.running) return;
  const late = now() - clock.next;
  if (late < 0) {
    p2pSchedule();
    return;
  }
  if (late >= P2P_CATCH_UP * clock.period) {
    // Far behind (the tab was hidden, the machine stalled): skip the deadlines missed beyond the
    // catch-up allowance instead of a long burst of frames; time sync with the partner follows.
    const missed = Math.floor(late / clock.period) - (P2P_CATCH_UP - 1);
    clock.next += missed * clock.period;
    clock.skipped += missed;
  }
  let out;
  try {
    out = toPlain(game.tick(epochMs()));
  } catch (err) {
    stopClock();
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
    return;
  }
  clock.ticks += 1;
  if (out.frame) {
    // The engine's frame (after a rollback, a redraw of the same frame counts once).
    if (typeof out.frame.step === "number") p2p.episodeFrames = Math.max(p2p.episodeFrames, out.frame.step);
    post({ type: "frame", frame: out.frame });
  }
  p2pOutput(out);
  if (now() - clock.lastBatch >= settings.batchIntervalMs) flush();
  p2pStats(false);
  if (out.done) {
    stopClock();
    flush();
    p2pStats(true);
    post({
      type: "episode_done",
      message: toPlain(game.episode_done()),
      ticks: clock.ticks,
      skipped: clock.skipped,
      startedMs: performance.timeOrigin + clock.start,
      periodMs: clock.period,
    });
    return;
  }
  const scale = typeof out.period_scale === "number" && out.period_scale >= 1 ? Math.min(out.period_scale, 1.1) : 1;
  clock.next += clock.period * scale;
  if (scale > 1) {
    p2p.stretched += 1;
    p2p.stretchedMs += clock.period * (scale - 1);
  }
  // A deadline already due (a late timer) runs at once: the two pages' frames are one clock, so a
  // page that falls a frame or two behind catches up rather than dropping them (P2P_CATCH_UP).
  p2pSchedule(); // at once when the next deadline is due already
}

function p2pPartnerLeft(policy) {
  if (!game) return;
  try {
    const spec = policy ? pyodide.toPy(policy) : undefined;
    game.partner_left(spec);
    if (spec) spec.destroy();
  } catch (err) {
    post({ type: "failed", message: String((err && err.message) || err).slice(0, 2000) });
  }
}

self.onmessage = (event) => {
  const message = event.data || {};
  switch (message.type) {
    case "load":
      load(message);
      break;
    case "episode":
      if (game && p2p) p2pStartEpisode(message);
      else if (game) startEpisode(message);
      break;
    case "p2p_start":
      p2pStart(message);
      break;
    case "handshake":
      if (p2p) p2pHandshake(Boolean(message.on));
      break;
    case "packet":
      if (p2p) {
        if (typeof message.t === "number") p2p.hops.push(epochMs() - message.t);
        if (p2p.hops.length > 120) p2p.hops.shift();
        p2pReceive(message.data);
      }
      break;
    case "channel":
      if (p2p && message.channel) p2pChannel(message.channel, message.faults || null);
      break;
    case "route":
      if (p2p) p2p.route = message.route;
      break;
    case "send_snapshot":
      // The server says the partner's new page is back and resumes from this page's state.
      if (p2p) {
        p2p.snapshotAllowed = true;
        p2p.snapshotBytes = null;
      }
      break;
    case "partner_left":
      if (p2p) p2pPartnerLeft(message.policy || null);
      break;
    case "keys":
      heldKeys = message.held || [];
      if (game) game.set_held(heldKeys);
      break;
    case "press":
      if (game) game.press(message.keys || []);
      break;
    case "keyframe":
      if (game) post({ type: "frame", frame: toPlain(game.keyframe()) });
      break;
    case "stop":
      stopClock();
      if (p2p) p2pHandshake(false);
      if (game) {
        if (typeof game.stop === "function") game.stop(message.reason || "stopped");
        flush();
      }
      break;
    case "stats":
      post({ type: "stats", ticks: clock.ticks, skipped: clock.skipped });
      break;
    default:
      break;
  }
};
