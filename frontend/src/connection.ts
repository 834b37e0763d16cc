/**
 * The participant's WebSocket (docs/protocol.md): binary msgpack frames, `hello` first,
 * heartbeat, reconnection with backoff, and the close codes that must not be retried.
 */

import { decode, encode } from "@msgpack/msgpack";
import { PROTOCOL_VERSION } from "./types";

/**
 * A ping every 10 s (docs/protocol.md). It only keeps an idle connection (a survey page) alive and
 * detects a dead one: during a game the server measures the round trip itself with `rtt_probe`,
 * and every inbound message costs the server CPU, so a 1 Hz ping from hundreds of pages buys nothing.
 */
const HEARTBEAT_MS = 10_000;
/** Without any frame from the server for this long, the socket is presumed dead. */
const DEAD_AFTER_MS = 45_000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 5_000;

/** Close codes after which the client does not reconnect on its own. */
const CLOSE_POLICY = 1008;
const CLOSE_TOO_BIG = 1009;
const CLOSE_SUPERSEDED = 4001;

/** A number that must travel as a msgpack float (e.g. `ping.t`), even when it is whole. */
export class Float64 {
  constructor(readonly value: number) {}
}

const encodeOptions = { ignoreUndefined: true } as const;

/** Encode one message map; `Float64` values at the top level are written as float64. */
export function encodeFrame(message: Record<string, unknown>): Uint8Array {
  const entries = Object.entries(message).filter(([, v]) => v !== undefined);
  if (!entries.some(([, v]) => v instanceof Float64)) return encode(message, encodeOptions);
  const parts: Uint8Array[] = [];
  const n = entries.length;
  parts.push(n < 16 ? Uint8Array.of(0x80 | n) : Uint8Array.of(0xde, n >> 8, n & 0xff));
  for (const [key, value] of entries) {
    parts.push(encode(key));
    if (value instanceof Float64) {
      const buf = new Uint8Array(9);
      buf[0] = 0xcb;
      new DataView(buf.buffer).setFloat64(1, value.value, false);
      parts.push(buf);
    } else {
      parts.push(encode(value, encodeOptions));
    }
  }
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export type ConnectionStatus =
  /** First connection attempt in progress. */
  | { state: "connecting" }
  /** `welcome` received. */
  | { state: "connected" }
  /** Unexpected loss; a reconnect is scheduled. */
  | { state: "reconnecting"; attempt: number; delayMs: number }
  /** Another tab took over (`superseded` / close 4001); no automatic reconnect. `message` may be "". */
  | { state: "superseded"; message: string }
  /** Closed with a code that must not be retried (1008, 1009). */
  | { state: "failed"; code: number; reason: string; message: string; errorCode?: string };

export interface ConnectionOptions {
  url: string;
  experimentId: string;
  maxMessageBytes: number;
  onMessage(message: Record<string, any>): void;
  onStatus(status: ConnectionStatus): void;
  /** Called when the socket closed or was given up, before any reconnect. */
  onDisconnect(): void;
}

export type SendResult = "sent" | "not_connected" | "too_large";

export class Connection {
  private ws: WebSocket | null = null;
  private seq = 0;
  private welcomed = false;
  private everWelcomed = false;
  private attempt = 0;
  private reconnectTimer: number | undefined;
  private heartbeatTimer: number | undefined;
  private lastFrameAt = 0;
  private stopped = false;
  private lastError: { code: string; message: string } | null = null;
  private supersededMessage: string | null = null;
  private memoryToken: string | null = null;

  constructor(private readonly opts: ConnectionOptions) {
    window.addEventListener("online", () => {
      if (this.reconnectTimer !== undefined) this.connectNow();
    });
    window.addEventListener("pagehide", () => {
      // Leaving the page is not a connection problem: no banner, no reconnect.
      this.stopped = true;
    });
    window.addEventListener("pageshow", (event) => {
      if ((event as PageTransitionEvent).persisted && this.stopped && !this.supersededMessage) {
        this.stopped = false;
        this.connectNow();
      }
    });
  }

  /** True once `welcome` arrived on the current socket (until it closes). */
  get connected(): boolean {
    return this.welcomed && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Next `seq` for a message on the current connection. */
  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  /** Open the socket (also used by "Continue in this window" after `superseded`). */
  connect(): void {
    this.stopped = false;
    this.supersededMessage = null;
    this.connectNow();
  }

  private connectNow(): void {
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.detach();
    if (!this.everWelcomed && this.attempt === 0) this.opts.onStatus({ state: "connecting" });
    this.seq = 0;
    this.welcomed = false;
    this.lastError = null;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch (err) {
      console.error("igym: cannot open the WebSocket", err);
      this.handleClose(1006, "");
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      this.sendRaw({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        token: this.loadToken(),
        params: queryParams(),
      });
      this.startHeartbeat();
    };
    ws.onmessage = (event) => this.handleFrame(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.handleClose(event.code, event.reason);
    };
    ws.onerror = () => {
      // A `close` event always follows; nothing to do here.
    };
  }

  /** Send a protocol message. Messages other than `hello` wait for `welcome`. */
  send(message: Record<string, unknown>): SendResult {
    if (!this.connected) return "not_connected";
    return this.sendRaw(message);
  }

  private sendRaw(message: Record<string, unknown>): SendResult {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return "not_connected";
    let frame: Uint8Array;
    try {
      frame = encodeFrame(message);
    } catch (err) {
      console.error("igym: cannot encode message", message, err);
      return "too_large";
    }
    if (frame.byteLength > this.opts.maxMessageBytes) {
      // The server would close the socket with 1009; better not to send it at all.
      console.error(
        `igym: "${String(message.type)}" message of ${frame.byteLength} bytes exceeds the ` +
          `server's limit of ${this.opts.maxMessageBytes} bytes; not sent`,
      );
      return "too_large";
    }
    ws.send(frame);
    return "sent";
  }

  private handleFrame(data: unknown): void {
    this.lastFrameAt = Date.now();
    if (!(data instanceof ArrayBuffer)) {
      console.error("igym: ignoring a non-binary frame from the server");
      return;
    }
    let message: unknown;
    try {
      message = decode(new Uint8Array(data));
    } catch (err) {
      console.error("igym: ignoring a frame that does not decode as msgpack", err);
      return;
    }
    if (!message || typeof message !== "object" || typeof (message as any).type !== "string") {
      console.error("igym: ignoring a frame without a string `type`", message);
      return;
    }
    const msg = message as Record<string, any>;
    switch (msg.type) {
      case "welcome":
        if (typeof msg.token === "string") this.saveToken(msg.token);
        if (msg.protocol !== PROTOCOL_VERSION) {
          console.warn(`igym: server speaks protocol ${msg.protocol}, client ${PROTOCOL_VERSION}`);
        }
        this.welcomed = true;
        this.everWelcomed = true;
        this.attempt = 0;
        this.opts.onStatus({ state: "connected" });
        break;
      case "superseded":
        this.supersededMessage = typeof msg.message === "string" ? msg.message : "";
        break;
      case "error":
        this.lastError = { code: String(msg.code), message: String(msg.message ?? "") };
        break;
      case "pong":
        break;
    }
    this.opts.onMessage(msg);
    if (msg.type === "superseded" && this.ws) {
      // The server closes with 4001 right after; stop using this socket now.
      this.handleClose(CLOSE_SUPERSEDED, "superseded");
    }
  }

  private handleClose(code: number, reason: string): void {
    this.detach();
    this.welcomed = false;
    this.opts.onDisconnect();
    if (this.supersededMessage !== null || code === CLOSE_SUPERSEDED) {
      this.opts.onStatus({
        state: "superseded",
        message: this.supersededMessage ?? "",
      });
      return;
    }
    if (code === CLOSE_POLICY || code === CLOSE_TOO_BIG) {
      this.opts.onStatus({
        state: "failed",
        code,
        reason,
        message: this.lastError?.message ?? "",
        errorCode: this.lastError?.code,
      });
      return;
    }
    if (this.stopped) return;
    const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.opts.onStatus({ state: "reconnecting", attempt: this.attempt, delayMs });
    this.reconnectTimer = window.setTimeout(() => this.connectNow(), delayMs);
  }

  /** Forget the current socket (without triggering its close handler). */
  private detach(): void {
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close();
        } catch {
          /* already closing */
        }
      }
    }
  }

  private startHeartbeat(): void {
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = window.setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      if (Date.now() - this.lastFrameAt > DEAD_AFTER_MS) {
        console.warn("igym: no answer from the server; reconnecting");
        this.handleClose(1006, "heartbeat timeout");
        return;
      }
      if (this.welcomed) {
        this.send({ type: "ping", seq: this.nextSeq(), t: new Float64(clientClockMs()) });
      }
    }, HEARTBEAT_MS);
  }

  // ---- token ------------------------------------------------------------------------------

  private get tokenKey(): string {
    return `igym:token:${this.opts.experimentId}`;
  }

  private loadToken(): string | null {
    try {
      const token = window.localStorage.getItem(this.tokenKey);
      if (token && isPlausibleToken(token)) return token;
    } catch {
      /* storage blocked (privacy mode): fall back to memory */
    }
    return this.memoryToken;
  }

  private saveToken(token: string): void {
    this.memoryToken = token;
    try {
      window.localStorage.setItem(this.tokenKey, token);
    } catch (err) {
      console.warn("igym: cannot store the participant token; a reload will start over", err);
    }
  }
}

/** Tokens are `secrets.token_urlsafe(32)`; anything else in storage is ignored. */
function isPlausibleToken(token: string): boolean {
  return token.length <= 128 && /^[A-Za-z0-9_-]+$/.test(token);
}

/** The client clock in milliseconds, with sub-millisecond precision where available. */
export function clientClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The server refuses a `hello` whose params exceed these (igym_core.protocol.messages). */
const MAX_PARAMS = 64;
const MAX_PARAM_LENGTH = 512;

/**
 * All URL query parameters as strings (recruitment ids such as PROLIFIC_PID). A parameter whose
 * name or value is longer than the server accepts, or any beyond the 64th, is left out with a
 * console warning: sending it would make the server refuse the `hello` and lock the participant out.
 */
export function queryParams(): Record<string, string> {
  const params: Record<string, string> = {};
  let count = 0;
  new URLSearchParams(window.location.search).forEach((value, key) => {
    if ([...key].length > MAX_PARAM_LENGTH || [...value].length > MAX_PARAM_LENGTH) {
      console.warn(`igym: URL parameter "${key.slice(0, 40)}" is too long to send; left out`);
      return;
    }
    if (!(key in params)) {
      if (count >= MAX_PARAMS) {
        console.warn(`igym: more than ${MAX_PARAMS} URL parameters; "${key.slice(0, 40)}" left out`);
        return;
      }
      count += 1;
    }
    params[key] = value;
  });
  return params;
}

/** ws(s):// URL of `path` on the page's own host. */
export function socketUrl(path: string): string {
  const url = new URL(path || "/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.toString();
}
