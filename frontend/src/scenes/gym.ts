/**
 * Scene kind "gym": a game the server steps and streams (docs/game-protocol.md).
 *
 * This file is in the main bundle and stays small: the page layout (header, HUD, canvas, footer),
 * the phase overlay (waiting, countdown, game over), the object table, keyboard input and
 * `game_ready`. Drawing is done by Phaser in `game/view.ts`, a separate chunk loaded with
 * `import()` when a game mounts, so pages without games never download Phaser. Frames that
 * arrive before it has loaded update the table and are drawn as soon as it is ready.
 *
 * The two bundles share no module at run time (build.mjs checks it): the table is
 * `game/objects.ts`, the view's field defaults are `game/fields.ts`.
 */

import { h, setTrustedHtml } from "../dom";
import { KeyInput, isTextEntry, listenKeyboard, normaliseKey, type InputPayload } from "../game/keys";
import { ObjectTable, type RenderObject } from "../game/objects";
import type {
  AssetSpec,
  CreateGameView,
  FrameMessage,
  GameDebugState,
  GamePhase,
  GameStatusMessage,
  GameView,
  GymSceneView,
} from "../game/types";
import type { SceneRenderer } from "../registry";

const COUNTDOWN_TICK_MS = 100;
const DEFAULT_FPS = 30;
const DEFAULT_SIZE = { width: 600, height: 400 };
/** The canvas is never drawn shorter than this (CSS px) to fit a small window; the page scrolls. */
const MIN_HEIGHT_PX = 240;
const PHASES: ReadonlySet<string> = new Set(["waiting", "countdown", "playing", "ended"]);

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
  viewModule ??= import("../game/view").then((m) => m.createGameView);
  // A failed load (network) may be retried by the next game scene.
  viewModule.catch(() => {
    viewModule = null;
  });
  return viewModule;
}

/** The mounted game, for `window.igym.gameObjects()`. */
let mounted: { objects(): Record<string, RenderObject> } | null = null;

/** The object descriptions of the mounted game by id (merged wire dicts, not interpolated). */
export function currentGameObjects(): Record<string, RenderObject> {
  return mounted ? mounted.objects() : {};
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

function toBytes(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return null;
}

export const gymScene: SceneRenderer = (ctx) => {
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
  };
  if (window.igym) window.igym.state.game = state;

  const table = new ObjectTable();
  let alive = true;
  let view: GameView | null = null;
  let message = "";
  let countdownEnd = 0;
  let countdownTimer: number | undefined;
  let readyFor: string | null = null;
  let reconnected = false;
  let seq = 0;

  // ---- layout -----------------------------------------------------------------------------

  const header = trustedBlock(scene.header_html, "igym-game-header");
  const footer = trustedBlock(scene.footer_html, "igym-game-footer");
  const hud = h("div", { class: "igym-game-hud is-empty", "aria-live": "off" });
  const statusLine = h("div", { class: "igym-game-status" });
  const canvasHost = h("div", { class: "igym-game-canvas" });
  const overlayTitle = h("p", { class: "igym-game-overlay-title" });
  const overlayText = h("p", { class: "igym-game-overlay-text" });
  const overlay = h(
    "div",
    { class: "igym-game-overlay", role: "status", "aria-live": "polite" },
    h("div", { class: "igym-game-overlay-box" }, overlayTitle, overlayText),
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
    h("div", { class: "igym-game" }, header, h("div", { class: "igym-game-bar" }, hud, statusLine), wrap, footer),
  );

  // ---- overlay and status line ------------------------------------------------------------

  const episodeText = (): string =>
    state.num_episodes > 0 && state.episode > 0 ? `Episode ${state.episode} of ${state.num_episodes}` : "";

  const showOverlay = (title: string, text: string, variant: string): void => {
    overlay.hidden = false;
    overlay.dataset.variant = variant;
    if (overlayTitle.textContent !== title) overlayTitle.textContent = title;
    if (overlayText.textContent !== text) overlayText.textContent = text;
    overlayText.hidden = text === "";
  };

  const stopCountdown = (): void => {
    window.clearInterval(countdownTimer);
    countdownTimer = undefined;
  };

  const renderOverlay = (): void => {
    statusLine.textContent = episodeText();
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
      default:
        stopCountdown();
        if (state.view === "loading" && state.phase === null) showOverlay("Loading the game…", "", "waiting");
        else showOverlay(message || "Waiting for the game to start…", message ? "" : episodeText(), "waiting");
    }
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
    canSend: () => alive && state.game_id !== null && (state.phase === "playing" || state.phase === "countdown"),
    send: (payload: InputPayload) => {
      seq += 1;
      state.inputs_sent += 1;
      if (payload.keys) state.keys = payload.keys;
      ctx.send({ type: "input", game_id: state.game_id, seq, ...payload });
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

  // ---- game_ready -------------------------------------------------------------------------

  const maybeReady = (): void => {
    if (!alive || !view || state.game_id === null || state.phase === "ended") return;
    if (readyFor === state.game_id) return;
    readyFor = state.game_id;
    state.ready_sent += 1;
    ctx.send({ type: "game_ready", game_id: state.game_id });
  };

  // ---- server messages --------------------------------------------------------------------

  const onStatus = (msg: Partial<GameStatusMessage>): void => {
    const gameId = typeof msg.game_id === "string" && msg.game_id ? msg.game_id : null;
    if (gameId !== null && gameId !== state.game_id) {
      // A new game: nothing of the previous one stays on screen.
      if (state.game_id !== null) {
        table.clear();
        view?.reset([]);
        state.objects = 0;
      }
      state.game_id = gameId;
      readyFor = null;
      input.resetForNewGame();
    }
    if (typeof msg.phase === "string" && PHASES.has(msg.phase)) state.phase = msg.phase as GamePhase;
    if (typeof msg.episode === "number") state.episode = msg.episode;
    if (typeof msg.num_episodes === "number") state.num_episodes = msg.num_episodes;
    if ("seat" in msg) state.seat = msg.seat ?? null;
    message = typeof msg.message === "string" ? msg.message : "";
    if (state.phase === "countdown") {
      const ms = typeof msg.countdown_ms === "number" && msg.countdown_ms > 0 ? msg.countdown_ms : 0;
      countdownEnd = performance.now() + ms;
    }
    renderOverlay();
    if (reconnected) {
      // A new connection: the server needs game_ready and our held keys again.
      reconnected = false;
      readyFor = null;
      maybeReady();
      input.resync();
    } else {
      maybeReady();
      input.kick();
    }
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

  const onFrame = (msg: Partial<FrameMessage>): void => {
    if (typeof msg.game_id === "string" && state.game_id !== null && msg.game_id !== state.game_id) return;
    const applied = table.apply(msg);
    state.frames += 1;
    if (applied.keyframe) state.keyframes += 1;
    if (typeof msg.tick === "number") state.tick = msg.tick;
    if (typeof msg.episode === "number" && msg.episode !== state.episode) {
      state.episode = msg.episode;
      statusLine.textContent = episodeText();
    }
    state.objects = table.size;
    if (typeof msg.hud === "string") setHud(msg.hud);
    view?.apply(applied);
    const bytes = toBytes(msg.image);
    if (bytes) queueImage(bytes);
  };

  const offs = [
    ctx.onMessage("game_status", onStatus),
    ctx.onMessage("frame", onFrame),
    ctx.onMessage("welcome", () => {
      reconnected = true;
    }),
  ];

  // ---- the Phaser view --------------------------------------------------------------------

  const abort = new AbortController();
  renderOverlay();
  fit();
  window.setTimeout(focusStage, 0);
  loadView()
    .then((create) =>
      alive
        ? create({ parent: canvasHost, width, height, background, assets, fps, interpolate, signal: abort.signal })
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
        maybeReady();
        focusStage();
      },
      (err) => {
        if (!alive) return;
        console.error("igym: the game could not be loaded", err);
        state.view = "failed";
        renderOverlay();
      },
    );

  mounted = { objects: () => table.snapshot() };
  const self = mounted;

  return {
    destroy() {
      alive = false;
      if (mounted === self) mounted = null;
      for (const off of offs) off();
      stopCountdown();
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
    },
  };
};
