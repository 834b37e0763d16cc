// The `pyodide_p2p` runtime in the page: each of the two participants' pages steps the env in its own
// Web Worker (worker.js, p2p mode) with the rollback engine (igym_pyodide_p2p.browser.p2p_game); the
// pages exchange the engine's packets over a WebRTC DataChannel (unordered, no retransmits), or over
// the igym WebSocket (`p2p_relay`) when no direct connection forms.
//
// The pyodide runtime's page code (page_game.js) does the loading, the frames, the keys, the step
// batches with their acks and re-sends, and the episodes; this module adds the connection:
//
//   server -> page: p2p_start {seat, partner_seat, authority, input_delay, window, hash_every,
//                   connect_timeout_ms, route: "auto" | "relay", ice_servers, silent_notice_ms,
//                   lost_after_ms}, p2p_signal {signal}, p2p_relay {data}, p2p_partner {state, resume?}
//   page -> server: p2p_signal {signal}, p2p_relay {data}, p2p_route {route, rtt_ms, input_delay,
//                   reason}, p2p_event {kind, episode, frame, detail}
//
// On `p2p_start` the authority offers an RTCPeerConnection (with the server's `ice_servers`) and
// the signals go through the server. A page receives the partner's packets from both routes at
// all times and sends on one: the DataChannel once it is open, the relay when the route is
// "relay", when no channel opened within `connect_timeout_ms`, or when the channel closes.
//
// Fault injection (tests and benches only): when `window.__igymP2PFaults = {seed, delay_ms,
// jitter_ms, loss, duplicate?, reorder?}` is set before the runtime starts, every send (either
// route) goes through a seeded fault hook: dropped with probability `loss`, delayed by `delay_ms`
// ± `jitter_ms` (uniform), sent twice with probability `duplicate`, held back one more `delay_ms`
// with probability `reorder`. Off otherwise.

import { createPyodideGame } from "./page_game.js";
import { faultySend } from "./p2p_faults.js";

export { faultySend, seededRandom } from "./p2p_faults.js";

export const DATA_CHANNEL_LABEL = "igym-p2p";
export const WAITING_TEXT = "Waiting for your partner…";
export const RECONNECTING_TEXT = "Your partner is reconnecting…";
export const LEFT_TEXT = "Your partner left the game.";
/** The route is reported once the handshake measured a round trip, or after this long without one. */
const ROUTE_REPORT_WAIT_MS = 1500;
/** A wait for the prediction window shorter than this is not shown (one or two frames' hitch). */
const WINDOW_NOTICE_AFTER_MS = 300;
const MAX_SIGNAL_QUEUE = 64;

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The connection to the partner: WebRTC signalling through the server, the DataChannel, the relay,
 * the route decision. `deliver(bytes)` gets every packet from the partner; `onRoute(route, reason)`
 * each time the route is settled or changes.
 */
export class P2PTransport {
  constructor({ send, config, deliver, onRoute, faults, state, handOff }) {
    this.sendToServer = send;
    /** handOff(channel) -> bool: give the DataChannel to the worker (it then sends and receives on
     * it, off the page's main thread, and tells the page when it opens or closes). */
    this.handOff = handOff || null;
    this.channelInWorker = false;
    this.config = config;
    this.deliver = deliver;
    this.onRoute = onRoute;
    this.state = state;
    this.route = null;
    this.pc = null;
    this.channel = null;
    this.pendingCandidates = [];
    /** Signals that came before start() made the peer connection (the partner may be quicker). */
    this.early = [];
    this.started = false;
    this.closed = false;
    this.timer = 0;
    const raw = (bytes) => this.sendNow(bytes);
    this.faultStats = { offered: 0, dropped: 0, duplicated: 0, reordered: 0 };
    this.send = faults ? faultySend(raw, faults, this.faultStats) : raw;
    state.faults = faults ? this.faultStats : null;
  }

  start() {
    if (this.started) return;
    this.started = true;
    const config = this.config;
    if (config.route === "relay") {
      this.settle("relay", "the scene's route is relay");
      return;
    }
    if (typeof RTCPeerConnection !== "function") {
      this.settle("relay", "this browser has no WebRTC (RTCPeerConnection)");
      return;
    }
    if (config.resume) {
      // This page reloaded mid-game: its partner's connection was to the old page. Relay now, and
      // connect again (the authority offers; the other page answers its offer).
      this.settle("relay", "this page reloaded mid-game");
      if (config.authority) this.renegotiate();
      this.replayEarly();
      return;
    }
    const timeout = Math.max(0, Number(config.connect_timeout_ms) || 5000);
    this.timer = setTimeout(() => {
      if (this.route === null) this.settle("relay", `no direct connection within ${timeout} ms`);
    }, timeout);
    if (!this.connect()) return;
    this.replayEarly();
  }

  /** A new RTCPeerConnection (the authority also makes the DataChannel and its offer). False when
   * none could be made (then the route is the relay). */
  connect() {
    const config = this.config;
    try {
      this.pc = new RTCPeerConnection({ iceServers: Array.isArray(config.ice_servers) ? config.ice_servers : [] });
    } catch (err) {
      this.settle("relay", `the peer connection could not be made: ${String((err && err.message) || err).slice(0, 120)}`);
      return false;
    }
    const pc = this.pc;
    this.pendingCandidates = [];
    pc.onicecandidate = (event) => {
      if (event.candidate && this.pc === pc) this.signal({ candidate: event.candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => {
      if (this.pc === pc) this.state.connection_state = pc.connectionState;
    };
    if (config.authority) {
      this.attach(pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: false, maxRetransmits: 0 }));
      pc.createOffer()
        .then((offer) => pc.setLocalDescription(offer))
        .then(() => this.signal({ description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } }))
        .catch((err) => this.settle("relay", `the WebRTC offer failed: ${String((err && err.message) || err).slice(0, 120)}`));
    } else {
      pc.ondatachannel = (event) => {
        if (event.channel.label === DATA_CHANNEL_LABEL && this.pc === pc) this.attach(event.channel);
      };
    }
    return true;
  }

  /** After a reload (this page's or the partner's), on the relay: a new connection to the partner's
   * page. The authority offers; the other page makes its connection when the offer comes. When the
   * channel opens the route is direct again; when none opens the pages stay on the relay. */
  renegotiate() {
    if (this.closed || this.config.route === "relay" || typeof RTCPeerConnection !== "function") return;
    this.state.renegotiations = (this.state.renegotiations || 0) + 1;
    this.reconnecting = true;
    try {
      this.pc?.close();
    } catch (err) {
      // already closed
    }
    this.pc = null;
    if (this.config.authority) this.connect();
  }

  replayEarly() {
    const early = this.early.splice(0);
    (async () => {
      for (const signal of early) await this.onSignal(signal);
    })();
  }

  signal(signal) {
    this.state.signals_sent += 1;
    this.sendToServer({ type: "p2p_signal", signal });
  }

  /** A `p2p_signal` from the partner: its SDP offer or answer, or an ICE candidate. */
  async onSignal(signal) {
    if (!this.started) {
      if (this.early.length < MAX_SIGNAL_QUEUE) this.early.push(signal);
      return;
    }
    const offer = signal && signal.description && signal.description.type === "offer";
    if (offer && !this.config.authority && this.config.route !== "relay" && (!this.pc || this.pc.signalingState === "closed" || this.reconnecting)) {
      // The authority connects again after a reload (its own or this page's): a new connection.
      try {
        this.pc?.close();
      } catch (err) {
        // already closed
      }
      this.reconnecting = this.route === "relay";
      if (!this.connect()) return;
    }
    const pc = this.pc;
    if (!pc || this.closed || !signal || typeof signal !== "object") return;
    this.state.signals_received += 1;
    try {
      if (signal.description && typeof signal.description.sdp === "string") {
        await pc.setRemoteDescription({ type: signal.description.type, sdp: signal.description.sdp });
        if (signal.description.type === "offer") {
          await pc.setLocalDescription(await pc.createAnswer());
          this.signal({ description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
        }
        for (const candidate of this.pendingCandidates.splice(0)) await pc.addIceCandidate(candidate);
      } else if (signal.candidate && typeof signal.candidate === "object") {
        if (!pc.remoteDescription) {
          if (this.pendingCandidates.length < MAX_SIGNAL_QUEUE) this.pendingCandidates.push(signal.candidate);
        } else {
          await pc.addIceCandidate(signal.candidate);
        }
      }
    } catch (err) {
      console.warn("igym: a WebRTC signal from the partner could not be used:", err);
    }
  }

  attach(channel) {
    this.channel = channel;
    // Handed off in the task that made it (a DataChannel can be transferred only before it is used).
    if (this.handOff && this.handOff(channel)) {
      this.channelInWorker = true;
      this.state.channel_in_worker = true;
      return;
    }
    channel.binaryType = "arraybuffer";
    channel.onopen = () => {
      this.state.channel_open = true;
      if (this.route === null) this.settle("direct", "");
    };
    channel.onmessage = (event) => {
      const data = event.data;
      if (data instanceof ArrayBuffer) {
        this.state.page_received_direct += 1;
        this.deliver(new Uint8Array(data));
      }
    };
    channel.onclose = () => this.channelClosed();
  }

  /** The DataChannel opened (on the page, or in the worker that has it). */
  channelOpened() {
    this.state.channel_open = true;
    if (this.route === null) this.settle("direct", "");
    else if (this.route === "relay" && this.reconnecting) {
      this.reconnecting = false;
      this.settle("direct", "connected again after a reload", true);
    }
  }

  channelClosed() {
    this.state.channel_open = false;
    if (!this.closed && this.route === "direct") this.settle("relay", "the DataChannel closed", true);
  }

  /** The partner's page went away (a reload): the old connection is dead; relay from now on. */
  partnerReloading() {
    if (this.route === "direct") this.settle("relay", "the partner's page reloaded", true);
    this.pc?.close();
  }

  /** The partner's new page is back: connect to it again (see renegotiate). */
  partnerBack() {
    if (this.route === "relay" && this.config.route !== "relay") this.renegotiate();
  }

  settle(route, reason, change = false) {
    if (this.closed || (this.route !== null && !change)) return;
    clearTimeout(this.timer);
    this.route = route;
    this.state.route = route;
    this.state.route_reason = reason;
    if (route === "relay" && this.pc && !change) {
      // No direct route: stop gathering and connecting (the partner sees its channel close, or
      // its own timeout, and relays too). A channel in the worker closes with the connection.
      if (!this.channelInWorker) this.channel?.close();
      this.pc.close();
    }
    this.onRoute(route, reason);
  }

  /** A packet from the partner through the server. */
  onRelay(data) {
    this.state.received_relay += 1;
    this.deliver(data);
  }

  sendNow(bytes) {
    if (this.closed) return;
    if (this.route === "direct" && !this.channelInWorker && this.channel && this.channel.readyState === "open") {
      try {
        this.channel.send(bytes);
        this.state.page_sent_direct += 1;
        return;
      } catch (err) {
        // A full or closing channel: this packet goes by the relay (the next ones too once closed).
      }
    }
    if (this.route === null) return; // not connected yet: the engine re-sends what is unacknowledged
    this.state.sent_relay += 1;
    this.sendToServer({ type: "p2p_relay", data: bytes });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    try {
      if (!this.channelInWorker) this.channel?.close();
      this.pc?.close();
    } catch (err) {
      // already closed
    }
  }
}

/**
 * Register the `pyodide_p2p` runtime with the client (the runtime's `client_module`). The shell
 * draws the frames and shows the server's statuses; the partner's state (waiting for their input,
 * reconnecting, gone) shows as the shell's notice line.
 */
export function register(api) {
  api.registerRuntime("pyodide_p2p", (shell, ctx) => {
    const stage = ctx.root.querySelector(".igym-game-stage") || ctx.root;
    const faults = typeof window !== "undefined" && window.__igymP2PFaults ? { ...window.__igymP2PFaults } : null;
    const pageRelay = typeof window !== "undefined" && Boolean(window.__igymP2PPageRelay);
    const p2pState = {
      seat: null,
      authority: null,
      route: null,
      route_reason: null,
      channel_open: false,
      connection_state: null,
      signals_sent: 0,
      signals_received: 0,
      sent_direct: 0,
      page_sent_direct: 0,
      page_received_direct: 0,
      channel_in_worker: false,
      sent_relay: 0,
      received_direct: 0,
      received_relay: 0,
      routes_reported: [],
      events: [],
      waiting: null,
      notice: "",
      partner: null,
      stats: null,
      input_delay: null,
      rtt_ms: null,
      fps: null,
      fps_by_episode: {},
      faults: null,
    };
    let transport = null;
    let config = null;
    let lastStatus = null;
    let partnerNotice = "";
    let waitingNotice = "";
    let windowTimer = 0;
    let routeToReport = null;
    let workerReady = false;
    const workerToPage = [];
    const mainLag = [];
    const hop = (list, ms) => {
      list.push(ms);
      if (list.length > 120) list.shift();
    };
    // How late the page's own timers run (its main thread also draws the game and carries the
    // packets): the median lateness of a 100 ms interval.
    let lagAt = performance.now();
    const lagTimer = setInterval(() => {
      const t = performance.now();
      hop(mainLag, Math.max(0, t - lagAt - 100));
      lagAt = t;
    }, 100);
    let routeSettled = false;
    /** Ping the partner on the settled route (auto input delay, RTT) until the episode starts. */
    const startHandshake = () => {
      if (workerReady && routeSettled) game.toWorker({ type: "handshake", on: true });
    };

    const send = (message) => ctx.send(message);
    const forGame = (msg) => game.gameId() !== null && msg.game_id === game.gameId();

    const renderNotice = () => {
      const text = partnerNotice || waitingNotice;
      if (text === p2pState.notice) return;
      p2pState.notice = text;
      // The shell's own notice line, through its status mechanism: the last server status again,
      // with the partner's state as its notice (the server's own notice when there is none).
      if (lastStatus) shell.applyStatus({ ...lastStatus, notice: text || lastStatus.notice || "" });
    };

    // The server starts the first countdown once both pages reported their route: report it as soon
    // as the handshake measured a round trip (the input delay the engine chose from it), or after
    // ROUTE_REPORT_WAIT_MS with what is known then.
    const reportRoute = (force = false) => {
      if (!routeToReport || !game.gameId()) return;
      const { route, reason } = routeToReport;
      const measured = typeof p2pState.rtt_ms === "number";
      if (!measured && !force) return;
      const delay = Number.isInteger(p2pState.input_delay)
        ? p2pState.input_delay
        : Number.isInteger(config?.input_delay)
          ? config.input_delay
          : 2;
      routeToReport = null;
      const rtt = typeof p2pState.rtt_ms === "number" && p2pState.rtt_ms >= 0 ? p2pState.rtt_ms : null;
      const message = { type: "p2p_route", game_id: game.gameId(), route, rtt_ms: rtt, input_delay: delay, reason: String(reason || "").slice(0, 200) };
      p2pState.routes_reported.push(message);
      send(message);
    };

    const onWorkerMessage = (message) => {
      switch (message.type) {
        case "p2p_ready":
          workerReady = true;
          startHandshake();
          break;
        case "send":
          if (typeof message.t === "number") hop(workerToPage, Date.now() - message.t);
          if (transport) for (const packet of message.packets || []) transport.send(packet);
          break;
        case "p2p_events":
          for (const event of message.events || []) {
            p2pState.events.push(event);
            if (p2pState.events.length > 200) p2pState.events.shift();
            if (event.kind === "partner_silent") partnerNotice = WAITING_TEXT;
            else if (event.kind === "partner_back" || event.kind === "resumed") partnerNotice = "";
            send({
              type: "p2p_event",
              game_id: game.gameId(),
              kind: event.kind,
              episode: event.episode,
              frame: event.frame,
              detail: event.detail || {},
            });
          }
          renderNotice();
          break;
        case "waiting":
          p2pState.waiting = message.waiting;
          clearTimeout(windowTimer);
          if (message.waiting === "partner") waitingNotice = WAITING_TEXT;
          else if (message.waiting === "window") {
            windowTimer = setTimeout(() => {
              waitingNotice = WAITING_TEXT;
              renderNotice();
            }, WINDOW_NOTICE_AFTER_MS);
          } else waitingNotice = "";
          renderNotice();
          break;
        case "channel":
          // The worker's DataChannel opened or closed.
          if (message.open) transport?.channelOpened();
          else transport?.channelClosed();
          break;
        case "p2p_stats":
          p2pState.stats = message.stats;
          p2pState.input_delay = message.input_delay;
          p2pState.rtt_ms = message.rtt_ms;
          p2pState.fps = message.fps;
          if (typeof message.fps === "number") p2pState.fps_by_episode[game.state.episode] = message.fps;
          p2pState.ticks = message.ticks;
          p2pState.skipped = message.skipped;
          // Where a round trip goes on this page: its worker to its main thread and back (medians).
          p2pState.worker_to_page_ms = median(workerToPage);
          p2pState.page_to_worker_ms = message.page_to_worker_ms;
          p2pState.main_thread_lag_ms = median(mainLag);
          // Direct packets: those the page sent and received, and those of the worker's channel.
          p2pState.sent_direct = p2pState.page_sent_direct + ((message.direct && message.direct.sent) || 0);
          p2pState.received_direct = p2pState.page_received_direct + ((message.direct && message.direct.received) || 0);
          p2pState.worker_faults = (message.direct && message.direct.faults) || null;
          // The worker's relay socket: packets it sent and received, whether it is open.
          p2pState.worker_relay = message.relay || null;
          p2pState.rollback_time = message.rollback_time || null;
          p2pState.resim_frame_us = message.resim_frame_us ?? null;
          p2pState.stretched = message.stretched;
          p2pState.stretched_ms = message.stretched_ms;
          reportRoute();
          break;
        default:
          break;
      }
    };

    const game = createPyodideGame(
      {
        send,
        onMessage: (type, fn) => ctx.onMessage(type, fn),
        drawFrame: (frame) => shell.applyFrame(frame),
        stage,
        scene: ctx.scene,
        showError: (title, text) => shell.showError(title, text),
      },
      // window.__igymP2PBench (benches only, set before the runtime starts): the worker times rollbacks.
      { mode: "p2p", onWorkerMessage, bench: typeof window !== "undefined" && Boolean(window.__igymP2PBench) },
    );
    game.state.p2p = p2pState;
    shell.state.runtime = "pyodide_p2p";
    shell.state.pyodide = game.state;
    shell.state.p2p = p2pState;
    shell.setInputHandler((payload) => {
      if (Array.isArray(payload.keys)) game.keys(payload.keys);
      else if (Array.isArray(payload.press)) game.press(payload.press);
    });

    const offs = [
      ctx.onMessage("game_status", (msg) => {
        lastStatus = msg;
        if (msg.phase === "ended") {
          partnerNotice = "";
          waitingNotice = "";
          p2pState.notice = "";
          transport?.close();
        }
        const text = partnerNotice || waitingNotice;
        shell.applyStatus(text && msg.phase === "playing" ? { ...msg, notice: text } : msg);
      }),
      ctx.onMessage("p2p_start", (msg) => {
        if (!forGame(msg) || transport) return;
        config = msg;
        p2pState.seat = msg.seat;
        p2pState.authority = Boolean(msg.authority);
        transport = new P2PTransport({
          send: (message) => send({ ...message, game_id: msg.game_id }),
          config: msg,
          faults,
          state: p2pState,
          deliver: (bytes) => game.toWorker({ type: "packet", data: bytes, t: Date.now() }),
          handOff: (channel) => game.toWorker({ type: "channel", channel, faults }, [channel]),
          onRoute: (route, reason) => {
            routeToReport = { route, reason };
            game.toWorker({ type: "route", route });
            setTimeout(() => reportRoute(true), ROUTE_REPORT_WAIT_MS);
            if (!routeSettled) {
              routeSettled = true;
              startHandshake();
            }
            reportRoute();
          },
        });
        game.toWorker({
          type: "p2p_start",
          seat: msg.seat,
          partner_seat: msg.partner_seat,
          authority: Boolean(msg.authority),
          input_delay: msg.input_delay,
          window: msg.window,
          hash_every: msg.hash_every,
          silent_notice_ms: msg.silent_notice_ms,
          lost_after_ms: msg.lost_after_ms,
          max_state_bytes: msg.max_state_bytes,
          resume: Boolean(msg.resume),
          // The worker's own relay socket (packets relayed off this page's main thread);
          // window.__igymP2PPageRelay (benches only): relay through this page's socket instead.
          relay_url: typeof msg.relay_url === "string" && !pageRelay ? msg.relay_url : null,
          relay_key: typeof msg.relay_key === "string" ? msg.relay_key : null,
          faults,
        });
        transport.start();
      }),
      ctx.onMessage("p2p_signal", (msg) => {
        if (forGame(msg) && transport) transport.onSignal(msg.signal);
      }),
      ctx.onMessage("p2p_relay", (msg) => {
        if (!forGame(msg) || !transport) return;
        const data = msg.data instanceof Uint8Array ? msg.data : null;
        if (data) transport.onRelay(data);
      }),
      ctx.onMessage("p2p_partner", (msg) => {
        if (!forGame(msg)) return;
        p2pState.partner = msg.state;
        if (msg.state === "reloading") {
          partnerNotice = RECONNECTING_TEXT;
          transport?.partnerReloading();
        }
        else if (msg.state === "back") {
          partnerNotice = "";
          // The partner's new page resumes from this page's state.
          if (msg.resume) game.toWorker({ type: "send_snapshot" });
          // ... and the two pages connect directly again (the relay meanwhile).
          if (msg.resume) transport?.partnerBack();
        }
        else if (msg.state === "left") {
          partnerNotice = LEFT_TEXT;
          // The scene's partner policy for the partner's seat (on_partner_left="bot"), or none (stop).
          const spec = ctx.scene && ctx.scene.runtime_view ? ctx.scene.runtime_view.game : null;
          const policies = (spec && spec.partner_policies) || {};
          game.toWorker({ type: "partner_left", policy: (config && policies[config.partner_seat]) || null });
        }
        renderNotice();
      }),
    ];

    return {
      destroy() {
        for (const off of offs) off();
        clearTimeout(windowTimer);
        clearInterval(lagTimer);
        transport?.close();
        shell.setInputHandler(null);
        game.destroy();
      },
    };
  });
}
