/**
 * The game shell: everything a game scene shows and listens to, whichever runtime steps the game
 * (docs/game-protocol.md).
 *
 * The page layout (header, HUD, canvas, footer), the phase overlay (waiting room, waiting,
 * countdown, game over, a final message), the notice banner and players line of multiplayer
 * games, the object table, the canvas fit, and keyboard input with the scene's key mapping and
 * held/press semantics. A runtime (`runtimes/server.ts`, or a plugin's, see `registry.ts`) feeds
 * it `game_status`-shaped statuses and frames in the server's `frame` format, and receives the
 * participant's input from it; so every runtime's game looks and behaves the same.
 *
 * Drawing is done by Phaser in `game/view.ts`, a separate chunk loaded with `import()` when a
 * game mounts, so pages without games never download Phaser. Frames that arrive before it has
 * loaded update the table and are drawn as soon as it is ready.
 *
 * This module is in the main bundle, and shares no module with the view chunk at run time
 * (build.mjs checks it): the table is `game/objects.ts`, the view's field defaults are `game/fields.ts`.
 */

import { h, setTrustedHtml } from "../dom";
import { KeyInput, isTextEntry, listenKeyboard, normaliseKey, type InputPayload } from "./keys";
import { ObjectTable, type RenderObject } from "./objects";
import type {
  AssetSpec,
  CreateGameView,
  FrameMessage,
  GameDebugState,
  GamePhase,
  GameStatusMessage,
  GameView,
  GymSceneView,
  PlayerInfo,
  WaitingInfo,
} from "./types";
import type { SceneContext } from "../registry";
import { safeRedirectUrl } from "../scenes/end";

const COUNTDOWN_TICK_MS = 100;
/** The waiting room's clock is redrawn this often (it shows whole seconds). */
const CLOCK_TICK_MS = 250;
/** A final message with a redirect stays this long before the page leaves, unless the server says. */
const DEFAULT_FINAL_REDIRECT_DELAY_MS = 1000;
const DEFAULT_FPS = 30;
const DEFAULT_SIZE = { width: 600, height: 400 };
/** The canvas is never drawn shorter than this (CSS px) to fit a small window; the page scrolls. */
const MIN_HEIGHT_PX = 240;
const PHASES: ReadonlySet<string> = new Set(["matching", "waiting", "countdown", "playing", "paused", "ended"]);
const SAVING_TEXT = "We could not save your progress yet. Please keep this page open; we are trying again.";
const PLAYER_STATUS: Record<string, string> = { connected: "connected", away: "connection lost", bot: "computer player" };

const KEY_NAMES: Record<string, string> = {
  " ": "Space",
  ArrowLeft: "Left arrow",
  ArrowRight: "Right arrow",
  ArrowUp: "Up arrow",
  ArrowDown: "Down arrow",
  Enter: "Enter",
  Escape: "Escape",
  Tab: "Tab",
  Backspace: "Backspace",
  Shift: "Shift",
  Control: "Ctrl",
  Alt: "Alt",
  Meta: "Meta",
};

/** Loads the Phaser view chunk (once; the browser caches the module). */
let viewModule: Promise<CreateGameView> | null = null;
function loadView(): Promise<CreateGameView> {
  viewModule ??= import("./view").then((m) => m.createGameView);
  // A failed load (network) may be retried by the next game scene.
  viewModule.catch(() => {
    viewModule = null;
  });
  return viewModule;
}

/** The mounted game, for `window.igym.gameObjects()` and `window.igym.gameDrawnPose()`. */
let mounted: {
  objects(): Record<string, RenderObject>;
  drawn(id: string): { x: number; y: number; angle: number } | null;
} | null = null;

/** The object descriptions of the mounted game by id (merged wire dicts, not interpolated). */
export function currentGameObjects(): Record<string, RenderObject> {
  return mounted ? mounted.objects() : {};
}

/**
 * Where the mounted game's object `id` is drawn now (the view's pose, mid-glide maybe), or null
 * (no such object, or the view is not ready). For measurements such as key press → drawn change.
 */
export function currentDrawnPose(id: string): { x: number; y: number; angle: number } | null {
  return mounted ? mounted.drawn(id) : null;
}

export function keyLabel(key: string): string {
  return KEY_NAMES[key] ?? (key.length === 1 ? key.toUpperCase() : key);
}

/** "Game: use the keys Left arrow, Right arrow and Space to play". */
export function gameLabel(keys: readonly string[]): string {
  if (keys.length === 0) return "Game";
  const names = keys.map(keyLabel);
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]!}`;
  return `Game: use the ${names.length === 1 ? "key" : "keys"} ${list} to play`;
}

function positive(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

function trustedBlock(html: unknown, cls: string): HTMLElement | null {
  if (typeof html !== "string" || !html.trim()) return null;
  const el = h("div", { class: `igym-prose ${cls}` });
  setTrustedHtml(el, html);
  return el;
}

/** "0:07", "12:05": minutes and seconds (whole seconds, rounded down). */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor((Number.isFinite(ms) ? ms : 0) / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${minutes}:${seconds < 10 ? "0" : ""}${seconds}`;
}

function nonNegativeInt(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.floor(value) : null;
}

/** A `game_status.waiting` as the client uses it, or null when it is not one. */
export function parseWaiting(value: unknown): WaitingInfo | null {
  if (typeof value !== "object" || value === null) return null;
  const w = value as Record<string, unknown>;
  return {
    count: nonNegativeInt(w.count),
    group_size: nonNegativeInt(w.group_size) ?? 0,
    waited_ms: nonNegativeInt(w.waited_ms) ?? 0,
    timeout_ms: nonNegativeInt(w.timeout_ms) ?? 0,
  };
}

/** "2 of 3 participants here"; without a count, "Waiting for a group of 3"; or "". */
export function waitingCountText(waiting: WaitingInfo | null): string {
  if (!waiting) return "";
  const size = waiting.group_size;
  if (waiting.count !== null) {
    if (size > 0) return `${waiting.count} of ${size} participants here`;
    return `${waiting.count} ${waiting.count === 1 ? "participant" : "participants"} here`;
  }
  return size > 0 ? `Waiting for a group of ${size}` : "";
}

/** The valid entries of `game_status.players`, or null when it is not a list. */
export function parsePlayers(value: unknown): PlayerInfo[] | null {
  if (!Array.isArray(value)) return null;
  const players: PlayerInfo[] = [];
  for (const p of value) {
    if (typeof p !== "object" || p === null) continue;
    const { seat, you, status } = p as Record<string, unknown>;
    if ((typeof seat !== "string" && typeof seat !== "number") || String(seat) === "") continue;
    players.push({
      seat: String(seat),
      you: you === true,
      status: status === "away" || status === "bot" ? status : "connected",
    });
  }
  return players;
}

/**
 * "You: left · Partner: right (connected)": this participant first, then the others in the
 * server's order; several others are "Partner 1", "Partner 2", …
 */
export function playersText(players: readonly PlayerInfo[] | null): string {
  if (!players || players.length === 0) return "";
  const others = players.filter((p) => !p.you);
  const named = others.map((p, i) => {
    const name = others.length === 1 ? "Partner" : `Partner ${i + 1}`;
    return `${name}: ${p.seat} (${PLAYER_STATUS[p.status] ?? p.status})`;
  });
  return [...players.filter((p) => p.you).map((p) => `You: ${p.seat}`), ...named].join(" · ");
}

/**
 * What a runtime gets to drive a game scene: `window.igym.state.game` (`state`), the scene's
 * parsed settings, and the shell's inputs and outputs. Statuses and frames use the server's wire
 * formats (docs/game-protocol.md), whoever produces them.
 */
export interface GameShell {
  /** The parsed scene: frame rate, logical canvas size, input mode and listened keys. */
  readonly settings: GameShellSettings;
  /** The debug state (`window.igym.state.game`); runtimes may add counters of their own. */
  readonly state: GameDebugState;
  /** False once the scene is left (the shell is destroyed). */
  readonly alive: boolean;
  /** The Phaser view has loaded its assets and draws (a runtime waits for it before starting). */
  readonly viewReady: boolean;
  /** Apply a `game_status` (phase, episode, seat, overlays, waiting room, players, final redirect). */
  applyStatus(msg: Partial<GameStatusMessage>): void;
  /** Apply one `frame` (keyframe `add`, deltas `upd`/`rm`, `hud`, `tick`, `episode`, `image`). */
  applyFrame(msg: Partial<FrameMessage>): void;
  /** Where the participant's input goes while a game is playing or counting down. */
  setInputHandler(handler: ((payload: InputPayload) => void) | null): void;
  /**
   * Called after every applied status and once the view is ready (`reason` says which; a handler
   * subscribed when the view is ready already is told `"view"` at once); a runtime answers there
   * (e.g. `game_ready`). Returns an unsubscribe function.
   */
  onChange(handler: (reason: "status" | "view") => void): () => void;
  /** The key input: `resync()` re-sends the held keys (after a reconnect). */
  readonly input: KeyInput;
  /** Show an error over the canvas (e.g. the runtime could not load); the game stops. */
  showError(title: string, text: string): void;
  destroy(): void;
}

export interface GameShellSettings {
  fps: number;
  width: number;
  height: number;
  background: string;
  mode: "held" | "press";
  keys: string[];
  interpolate: boolean;
}

function toBytes(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return null;
}

/** Build the shell of a game scene into `ctx.root` (the view loads in the background). */
export function createGameShell(ctx: SceneContext): GameShell {
  const scene = ctx.scene as Partial<GymSceneView>;
  const fps = positive(scene.fps, DEFAULT_FPS);
  const width = Math.round(positive(scene.canvas?.width, DEFAULT_SIZE.width));
  const height = Math.round(positive(scene.canvas?.height, DEFAULT_SIZE.height));
  const bg = scene.canvas?.background;
  const background = typeof bg === "string" && /^#[0-9a-fA-F]{6}$/.test(bg) ? bg : "#000000";
  const mode = scene.input_mode === "press" ? "press" : "held";
  const keys = [...new Set((Array.isArray(scene.keys) ? scene.keys : []).filter((k) => typeof k === "string" && k).map(normaliseKey))];
  const assets: AssetSpec[] = Array.isArray(scene.assets) ? scene.assets : [];
  const interpolate = scene.interpolate !== false;

  const state: GameDebugState = {
    runtime: "server",
    game_id: null,
    phase: null,
    episode: 0,
    num_episodes: 0,
    seat: null,
    tick: null,
    frames: 0,
    keyframes: 0,
    dropped_images: 0,
    objects: 0,
    hud: "",
    keys: [],
    inputs_sent: 0,
    view: "loading",
    renderer: null,
    ready_sent: 0,
    message: "",
    pause_reason: null,
    waiting: null,
    notice: "",
    final: false,
    players: null,
    rtt_echoes: 0,
    redirect_url: null,
  };
  if (window.igym) window.igym.state.game = state;

  const table = new ObjectTable();
  let alive = true;
  let view: GameView | null = null;
  let message = "";
  let countdownEnd = 0;
  let countdownTimer: number | undefined;
  /** performance.now() when this participant entered the waiting room (from `waited_ms`). */
  let waitingSince = 0;
  let clockTimer: number | undefined;
  let redirectTimer: number | undefined;
  let inputHandler: ((payload: InputPayload) => void) | null = null;
  const changeHandlers = new Set<(reason: "status" | "view") => void>();
  let errorText: [string, string] | null = null;
  const notify = (reason: "status" | "view"): void => {
    for (const handler of [...changeHandlers]) {
      if (!alive) return;
      try {
        handler(reason);
      } catch (err) {
        console.error("igym: a game runtime's change handler failed", err);
      }
    }
  };

  // ---- layout -----------------------------------------------------------------------------

  const header = trustedBlock(scene.header_html, "igym-game-header");
  const footer = trustedBlock(scene.footer_html, "igym-game-footer");
  const hud = h("div", { class: "igym-game-hud is-empty", "aria-live": "off" });
  const playersLine = h("span", { class: "igym-game-players", hidden: true });
  const episodeLine = h("span", { class: "igym-game-episode" });
  const statusLine = h("div", { class: "igym-game-status" }, playersLine, episodeLine);
  const notice = h("div", { class: "igym-game-notice", role: "status", "aria-live": "polite" });
  notice.hidden = true;
  const canvasHost = h("div", { class: "igym-game-canvas" });
  const overlayTitle = h("p", { class: "igym-game-overlay-title" });
  const overlayText = h("p", { class: "igym-game-overlay-text" });
  // The waiting room: how many are here (announced when it changes) and, outside the live
  // region so that it is not read out every second, how long this participant has waited.
  const waitingCount = h("p", { class: "igym-game-waiting-count", hidden: true });
  const waitingDots = h(
    "span",
    { class: "igym-game-waiting-dots", "aria-hidden": "true", hidden: true },
    h("span"),
    h("span"),
    h("span"),
  );
  const waitingClock = h("p", { class: "igym-game-waiting-clock", hidden: true });
  const redirectNote = h("p", { class: "igym-game-redirect", hidden: true });
  const overlay = h(
    "div",
    { class: "igym-game-overlay" },
    h(
      "div",
      { class: "igym-game-overlay-box" },
      h(
        "div",
        { class: "igym-game-overlay-live", role: "status", "aria-live": "polite" },
        overlayTitle,
        overlayText,
        waitingCount,
        redirectNote,
      ),
      waitingDots,
      waitingClock,
    ),
  );
  const stage = h(
    "div",
    {
      class: "igym-game-stage",
      role: "application",
      "aria-label": gameLabel(keys),
      tabindex: 0,
      style: { backgroundColor: background, width: `${width}px`, height: `${height}px` },
    },
    canvasHost,
    overlay,
  );
  const wrap = h("div", { class: "igym-game-wrap" }, stage);
  ctx.root.append(
    h(
      "div",
      { class: "igym-game" },
      header,
      h("div", { class: "igym-game-bar" }, hud, statusLine),
      notice,
      wrap,
      footer,
    ),
  );

  // ---- overlay and status line ------------------------------------------------------------

  const episodeText = (): string =>
    state.num_episodes > 0 && state.episode > 0 ? `Episode ${state.episode} of ${state.num_episodes}` : "";

  const setText = (el: HTMLElement, text: string): void => {
    if (el.textContent !== text) el.textContent = text;
    el.hidden = text === "";
  };

  const showOverlay = (title: string, text: string, variant: string): void => {
    overlay.hidden = false;
    overlay.dataset.variant = variant;
    setText(overlayTitle, title);
    setText(overlayText, text);
    if (variant !== "matching") {
      stopClock();
      setText(waitingCount, "");
      waitingDots.hidden = true;
    }
    if (variant !== "final") redirectNote.hidden = true;
  };

  const stopCountdown = (): void => {
    window.clearInterval(countdownTimer);
    countdownTimer = undefined;
  };

  const stopClock = (): void => {
    window.clearInterval(clockTimer);
    clockTimer = undefined;
    setText(waitingClock, "");
  };

  const renderClock = (): void => {
    setText(waitingClock, `Time waited: ${formatClock(performance.now() - waitingSince)}`);
  };

  const showWaitingRoom = (): void => {
    stopCountdown();
    showOverlay(message || "Waiting for other participants to join…", "", "matching");
    setText(waitingCount, waitingCountText(state.waiting));
    waitingDots.hidden = false;
    renderClock();
    clockTimer ??= window.setInterval(renderClock, CLOCK_TICK_MS);
  };

  const showFinal = (): void => {
    stopCountdown();
    showOverlay("", message || "This study has ended for you. Thank you for taking part.", "final");
    const url = state.redirect_url;
    if (!url) {
      redirectNote.hidden = true;
      return;
    }
    if (redirectNote.dataset.url !== url) {
      redirectNote.dataset.url = url;
      redirectNote.replaceChildren(
        "Returning you to the study platform… If nothing happens, ",
        h("a", { href: url, class: "igym-redirect-link" }, "continue to the study platform"),
        ".",
      );
    }
    redirectNote.hidden = false;
  };

  const renderOverlay = (): void => {
    setText(episodeLine, state.phase === "matching" || state.final ? "" : episodeText());
    if (state.final) {
      showFinal();
      return;
    }
    if (errorText !== null) {
      stopCountdown();
      stopClock();
      showOverlay(errorText[0], errorText[1], "error");
      return;
    }
    if (state.view === "failed") {
      stopCountdown();
      showOverlay("The game could not be loaded", "Please reload the page. If this keeps happening, please contact the researcher.", "error");
      return;
    }
    switch (state.phase) {
      case "countdown": {
        const left = countdownEnd - performance.now();
        if (left <= 0) {
          stopCountdown();
          overlay.hidden = true;
          return;
        }
        showOverlay(String(Math.ceil(left / 1000)), episodeText() || message, "countdown");
        if (countdownTimer === undefined) countdownTimer = window.setInterval(renderOverlay, COUNTDOWN_TICK_MS);
        return;
      }
      case "playing":
        stopCountdown();
        overlay.hidden = true;
        return;
      case "ended":
        stopCountdown();
        showOverlay("Game over", message, "ended");
        return;
      case "matching":
        showWaitingRoom();
        return;
      case "paused":
        // The server stopped the game: its data cannot be saved yet (pause_reason "saving"), or
        // nobody was connected. It resumes by itself with a countdown; the last frame stays below.
        stopCountdown();
        if (state.pause_reason === "saving") showOverlay("Game paused", message || SAVING_TEXT, "paused");
        else showOverlay("Game paused", message || "The game will go on in a moment.", "paused");
        return;
      default:
        stopCountdown();
        if (state.view === "loading" && state.phase === null) showOverlay("Loading the game…", "", "waiting");
        else showOverlay(message || "Waiting for the game to start…", message ? "" : episodeText(), "waiting");
    }
  };

  const setNotice = (text: string): void => {
    state.notice = text;
    setText(notice, text);
  };

  const setPlayers = (players: PlayerInfo[] | null): void => {
    state.players = players;
    setText(playersLine, playersText(players));
  };

  const setHud = (text: string): void => {
    state.hud = text;
    if (hud.textContent !== text) hud.textContent = text;
    hud.classList.toggle("is-empty", text === "");
  };

  // ---- size: fit the logical canvas into the width and the visible height ------------------

  let lastFit = "";
  const fit = (): void => {
    if (!alive) return;
    const availW = wrap.clientWidth;
    if (availW <= 0) return;
    const wrapRect = wrap.getBoundingClientRect();
    const top = wrapRect.top + window.scrollY;
    const card = ctx.root.closest(".igym-card");
    const below = card
      ? Math.max(0, card.getBoundingClientRect().bottom - wrapRect.bottom)
      : (footer?.offsetHeight ?? 0);
    const availH = window.innerHeight - top - below - 8;
    const byWidth = availW / width;
    const scale = Math.min(byWidth, Math.max(availH / height, Math.min(byWidth, MIN_HEIGHT_PX / height)));
    const cssW = Math.max(1, Math.floor(width * scale));
    const cssH = Math.max(1, Math.floor(height * scale));
    const key = `${cssW}x${cssH}@${window.devicePixelRatio}`;
    if (key === lastFit) return;
    lastFit = key;
    stage.style.width = `${cssW}px`;
    stage.style.height = `${cssH}px`;
    view?.resize(cssW, cssH);
  };
  let fitFrame = 0;
  const scheduleFit = (): void => {
    if (fitFrame) return;
    fitFrame = window.requestAnimationFrame(() => {
      fitFrame = 0;
      fit();
    });
  };
  const resizeObserver = typeof ResizeObserver === "function" ? new ResizeObserver(scheduleFit) : null;
  resizeObserver?.observe(ctx.root);
  resizeObserver?.observe(wrap);
  window.addEventListener("resize", scheduleFit);

  // ---- input ------------------------------------------------------------------------------

  const input = new KeyInput({
    mode,
    intervalMs: 1000 / fps,
    canSend: () =>
      alive &&
      inputHandler !== null &&
      state.game_id !== null &&
      (state.phase === "playing" || state.phase === "countdown"),
    send: (payload: InputPayload) => {
      state.inputs_sent += 1;
      if (payload.keys) state.keys = payload.keys;
      inputHandler?.(payload);
    },
  });
  const stopKeyboard = keys.length ? listenKeyboard(window, input, { listened: new Set(keys) }) : () => {};

  const focusStage = (): void => {
    if (!alive) return;
    const active = document.activeElement;
    if (isTextEntry(active)) return;
    if (active && active !== document.body && active !== stage && !ctx.root.contains(active) && active.closest(".igym-card") === null) return;
    stage.focus({ preventScroll: true });
  };

  // ---- statuses and frames ----------------------------------------------------------------

  const forgetGame = (): void => {
    table.clear();
    view?.reset([]);
    state.objects = 0;
    state.game_id = null;
    setPlayers(null);
  };

  const onStatus = (msg: Partial<GameStatusMessage>): void => {
    const gameId = typeof msg.game_id === "string" && msg.game_id ? msg.game_id : null;
    // Back in the waiting room (no game yet): nothing of an earlier game stays on screen.
    if (msg.phase === "matching" && gameId === null && state.game_id !== null) forgetGame();
    if (gameId !== null && gameId !== state.game_id) {
      // A new game: nothing of the previous one stays on screen.
      if (state.game_id !== null) {
        table.clear();
        view?.reset([]);
        state.objects = 0;
      }
      state.game_id = gameId;
      input.resetForNewGame();
    }
    if (typeof msg.phase === "string" && PHASES.has(msg.phase)) state.phase = msg.phase as GamePhase;
    if (typeof msg.episode === "number") state.episode = msg.episode;
    if (typeof msg.num_episodes === "number") state.num_episodes = msg.num_episodes;
    if ("seat" in msg) {
      state.seat = msg.seat ?? null;
      view?.setOwnSeat(ownSeat());
    }
    state.pause_reason = state.phase === "paused" && typeof msg.pause_reason === "string" ? msg.pause_reason : null;
    message = typeof msg.message === "string" ? msg.message : "";
    state.message = message;
    if (state.phase === "matching") {
      state.waiting = parseWaiting(msg.waiting);
      waitingSince = performance.now() - (state.waiting?.waited_ms ?? 0);
    } else {
      state.waiting = null;
    }
    setNotice(typeof msg.notice === "string" ? msg.notice : "");
    const players = parsePlayers(msg.players);
    if (players) setPlayers(players);
    state.final = state.phase === "ended" && msg.final === true;
    const redirect = state.final ? safeRedirectUrl(msg.redirect_url) : null;
    if (redirect !== state.redirect_url) {
      window.clearTimeout(redirectTimer);
      redirectTimer = undefined;
      state.redirect_url = redirect;
      if (redirect) {
        const delay = nonNegativeInt(msg.redirect_delay_ms) ?? DEFAULT_FINAL_REDIRECT_DELAY_MS;
        redirectTimer = window.setTimeout(() => {
          if (alive) window.location.assign(redirect);
        }, delay);
      }
    }
    if (state.phase === "countdown") {
      const ms = typeof msg.countdown_ms === "number" && msg.countdown_ms > 0 ? msg.countdown_ms : 0;
      countdownEnd = performance.now() + ms;
    }
    renderOverlay();
    notify("status");
    input.kick();
  };

  let decoding = false;
  let pendingImage: Uint8Array | null = null;
  let waitingBitmap: ImageBitmap | null = null;
  let imageErrorLogged = false;
  const decodeImage = (bytes: Uint8Array): void => {
    decoding = true;
    createImageBitmap(new Blob([bytes as BlobPart], { type: "image/png" }))
      .then(
        (bitmap) => {
          if (!alive) bitmap.close();
          else if (view) view.showImage(bitmap);
          else {
            waitingBitmap?.close();
            waitingBitmap = bitmap;
          }
        },
        (err) => {
          if (!imageErrorLogged) {
            imageErrorLogged = true;
            console.error("igym: a game frame image could not be decoded", err);
          }
        },
      )
      .finally(() => {
        decoding = false;
        const next = pendingImage;
        pendingImage = null;
        if (next && alive) decodeImage(next);
      });
  };
  const queueImage = (bytes: Uint8Array): void => {
    if (!decoding) {
      decodeImage(bytes);
      return;
    }
    // Still decoding the previous frame: keep only the newest waiting one.
    if (pendingImage) state.dropped_images += 1;
    pendingImage = bytes;
  };

  /** The seat this participant plays, as render objects name it in `owner` (null: none). */
  const ownSeat = (): string | null =>
    typeof state.seat === "string" || typeof state.seat === "number" ? String(state.seat) : null;

  const onFrame = (msg: Partial<FrameMessage>): void => {
    if (typeof msg.game_id === "string" && state.game_id !== null && msg.game_id !== state.game_id) return;
    const applied = table.apply(msg);
    state.frames += 1;
    if (applied.keyframe) state.keyframes += 1;
    if (typeof msg.tick === "number") state.tick = msg.tick;
    if (typeof msg.episode === "number" && msg.episode !== state.episode) {
      state.episode = msg.episode;
      setText(episodeLine, episodeText());
    }
    state.objects = table.size;
    if (typeof msg.hud === "string") setHud(msg.hud);
    view?.apply(applied);
    const bytes = toBytes(msg.image);
    if (bytes) queueImage(bytes);
  };

  // ---- the Phaser view --------------------------------------------------------------------

  const abort = new AbortController();
  renderOverlay();
  fit();
  window.setTimeout(focusStage, 0);
  loadView()
    .then((create) =>
      alive
        ? create({
            parent: canvasHost,
            width,
            height,
            background,
            assets,
            fps,
            interpolate,
            ownSeat: ownSeat(),
            signal: abort.signal,
          })
        : null,
    )
    .then(
      (v) => {
        if (!v) return;
        if (!alive) {
          v.destroy();
          return;
        }
        view = v;
        state.view = "ready";
        state.renderer = v.rendererType;
        v.reset(table.all());
        if (waitingBitmap) {
          v.showImage(waitingBitmap);
          waitingBitmap = null;
        }
        lastFit = "";
        fit();
        renderOverlay();
        focusStage();
        notify("view");
      },
      (err) => {
        if (!alive) return;
        console.error("igym: the game could not be loaded", err);
        state.view = "failed";
        renderOverlay();
      },
    );

  mounted = { objects: () => table.snapshot(), drawn: (id) => view?.drawnPose(id) ?? null };
  const self = mounted;

  const destroy = (): void => {
    if (!alive) return;
    alive = false;
    if (mounted === self) mounted = null;
    changeHandlers.clear();
    inputHandler = null;
    stopCountdown();
    stopClock();
    window.clearTimeout(redirectTimer);
    stopKeyboard();
    input.destroy();
    resizeObserver?.disconnect();
    window.removeEventListener("resize", scheduleFit);
    window.cancelAnimationFrame(fitFrame);
    abort.abort();
    view?.destroy();
    view = null;
    waitingBitmap?.close();
    waitingBitmap = null;
    pendingImage = null;
    table.clear();
  };

  return {
    settings: { fps, width, height, background, mode, keys, interpolate },
    state,
    get alive() {
      return alive;
    },
    get viewReady() {
      return alive && view !== null;
    },
    applyStatus: (msg) => {
      if (alive && errorText === null) onStatus(msg);
    },
    applyFrame: (msg) => {
      if (alive && errorText === null) onFrame(msg);
    },
    setInputHandler: (handler) => {
      inputHandler = alive ? handler : null;
      if (inputHandler) input.kick(); // keys held while there was no handler go out now
    },
    onChange: (handler) => {
      if (!alive) return () => {};
      changeHandlers.add(handler);
      if (state.view === "ready") {
        // A runtime whose module loaded after the view was ready still hears "view" once.
        queueMicrotask(() => {
          if (alive && changeHandlers.has(handler)) handler("view");
        });
      }
      return () => {
        changeHandlers.delete(handler);
      };
    },
    input,
    showError: (title, text) => {
      if (!alive) return;
      errorText = [title, text];
      inputHandler = null;
      renderOverlay();
    },
    destroy,
  };
}
