/**
 * The game shell: everything a game scene shows and listens to, whichever runtime steps the game
 * (docs/game-protocol.md).
 *
 * This module holds the game's state: statuses applied (phase, episode, seat, waiting room,
 * players, final redirect), frames applied to the object table, keyboard input with the scene's
 * key mapping and held/press semantics, and the runtime's seam (`GameShell`). What the page shows
 * is `game/layout.ts` (layout, phase overlay, notice, players and episode lines, canvas fit), with
 * the texts of `game/labels.ts`. A runtime (`runtimes/server.ts`, or a plugin's, see `registry.ts`) feeds
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
} from "./types";
import type { SceneContext } from "../registry";
import { safeRedirectUrl } from "../scenes/end";
import { followWayBack, parseWayBack } from "../scenes/way_back";
import {
  nonNegativeInt,
  parsePlayers,
  parseWaiting,
} from "./labels";
import { createGameLayout } from "./layout";

export { formatClock, gameLabel, keyLabel, parsePlayers, parseWaiting, playersText, waitingCountText } from "./labels";

/** A final message with a redirect stays this long before the page leaves, unless the server says. */
const DEFAULT_FINAL_REDIRECT_DELAY_MS = 1000;
const DEFAULT_FPS = 30;
const DEFAULT_SIZE = { width: 600, height: 400 };
const PHASES: ReadonlySet<string> = new Set(["matching", "waiting", "countdown", "playing", "paused", "ended"]);

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

function positive(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
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
  let redirectTimer: number | undefined;
  let inputHandler: ((payload: InputPayload) => void) | null = null;
  const changeHandlers = new Set<(reason: "status" | "view") => void>();
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

  // ---- layout, overlay, status line, canvas fit (game/layout.ts) ----------------------------

  const layout = createGameLayout(ctx.root, state, {
    width,
    height,
    background,
    keys,
    headerHtml: scene.header_html,
    footerHtml: scene.footer_html,
    onResize: (cssWidth, cssHeight) => view?.resize(cssWidth, cssHeight),
  });
  const { stage, canvasHost } = layout;
  const overlayInput = layout.input;
  const renderOverlay = layout.render;

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
    layout.setPlayers(null);
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
    const message = typeof msg.message === "string" ? msg.message : "";
    overlayInput.message = message;
    state.message = message;
    if (state.phase === "matching") {
      state.waiting = parseWaiting(msg.waiting);
      overlayInput.waitingSince = performance.now() - (state.waiting?.waited_ms ?? 0);
    } else {
      state.waiting = null;
    }
    layout.setNotice(typeof msg.notice === "string" ? msg.notice : "");
    const players = parsePlayers(msg.players);
    if (players) layout.setPlayers(players);
    state.final = state.phase === "ended" && msg.final === true;
    // The recruitment platform's way back (a form POST for MTurk) replaces a plain redirect.
    const wayBack = state.final ? parseWayBack(msg.way_back) : null;
    const redirect = wayBack ? wayBack.url : state.final ? safeRedirectUrl(msg.redirect_url) : null;
    if (redirect !== state.redirect_url) {
      window.clearTimeout(redirectTimer);
      redirectTimer = undefined;
      state.redirect_url = redirect;
      if (redirect) {
        const delay = nonNegativeInt(msg.redirect_delay_ms) ?? DEFAULT_FINAL_REDIRECT_DELAY_MS;
        redirectTimer = window.setTimeout(() => {
          if (!alive) return;
          if (wayBack) followWayBack(wayBack);
          else window.location.assign(redirect);
        }, delay);
      }
    }
    if (state.phase === "countdown") {
      const ms = typeof msg.countdown_ms === "number" && msg.countdown_ms > 0 ? msg.countdown_ms : 0;
      overlayInput.countdownEnd = performance.now() + ms;
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
      layout.renderEpisode();
    }
    state.objects = table.size;
    if (typeof msg.hud === "string") layout.setHud(msg.hud);
    view?.apply(applied);
    const bytes = toBytes(msg.image);
    if (bytes) queueImage(bytes);
  };

  // ---- the Phaser view --------------------------------------------------------------------

  const abort = new AbortController();
  renderOverlay();
  layout.refit();
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
        layout.refit();
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
    layout.destroy();
    window.clearTimeout(redirectTimer);
    stopKeyboard();
    input.destroy();
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
      if (alive && overlayInput.errorText === null) onStatus(msg);
    },
    applyFrame: (msg) => {
      if (alive && overlayInput.errorText === null) onFrame(msg);
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
      overlayInput.errorText = [title, text];
      inputHandler = null;
      renderOverlay();
    },
    destroy,
  };
}
