/**
 * The page side of a game scene: its layout (header, HUD, status line with the players and the
 * episode, notice banner, the stage that holds the canvas and the phase overlay, footer), the
 * overlay for each phase (waiting room with its count and clock, waiting, countdown, paused,
 * game over, a final message with its redirect note, errors), and the fit of the logical canvas
 * into the window. `game/shell.ts` owns the state it shows and says when to show it again.
 */

import { h, setTrustedHtml } from "../dom";
import { formatClock, gameLabel, playersText, waitingCountText } from "./labels";
import type { GameDebugState, PlayerInfo } from "./types";

const COUNTDOWN_TICK_MS = 100;
/** The waiting room's clock is redrawn this often (it shows whole seconds). */
const CLOCK_TICK_MS = 250;
/** The canvas is never drawn shorter than this (CSS px) to fit a small window; the page scrolls. */
const MIN_HEIGHT_PX = 240;
const SAVING_TEXT = "We could not save your progress yet. Please keep this page open; we are trying again.";

export interface GameLayoutOptions {
  /** The logical canvas size and background. */
  width: number;
  height: number;
  background: string;
  /** The listened keys (for the stage's accessible label). */
  keys: readonly string[];
  /** The researcher's trusted HTML above and below the game. */
  headerHtml: unknown;
  footerHtml: unknown;
  /** The stage was given this CSS size (the view resizes its canvas). */
  onResize(cssWidth: number, cssHeight: number): void;
}

/** What the overlay shows besides `state`: set by the shell from the latest status. */
export interface OverlayInput {
  /** The status's message. */
  message: string;
  /** performance.now() when the countdown ends. */
  countdownEnd: number;
  /** performance.now() when this participant entered the waiting room (from `waited_ms`). */
  waitingSince: number;
  /** An error shown over the canvas ([title, text]): the game stopped. */
  errorText: [string, string] | null;
}

export interface GameLayout {
  /** The focusable stage (the keyboard's target) and the element the view draws into. */
  readonly stage: HTMLElement;
  readonly canvasHost: HTMLElement;
  readonly input: OverlayInput;
  /** Show the overlay and the episode line for `state` and `input` now. */
  render(): void;
  /** The episode line only (a frame moved to another episode). */
  renderEpisode(): void;
  setNotice(text: string): void;
  setPlayers(players: PlayerInfo[] | null): void;
  setHud(text: string): void;
  /** Fit the canvas again, even at the same size (a view that just became ready). */
  refit(): void;
  destroy(): void;
}

function trustedBlock(html: unknown, cls: string): HTMLElement | null {
  if (typeof html !== "string" || !html.trim()) return null;
  const el = h("div", { class: `igym-prose ${cls}` });
  setTrustedHtml(el, html);
  return el;
}

/** Build a game scene's layout into `root`; it shows `state` (the shell's debug state). */
export function createGameLayout(root: HTMLElement, state: GameDebugState, options: GameLayoutOptions): GameLayout {
  const { width, height, background, keys, onResize } = options;
  const input: OverlayInput = { message: "", countdownEnd: 0, waitingSince: 0, errorText: null };
  let destroyed = false;
  let countdownTimer: number | undefined;
  let clockTimer: number | undefined;

  const header = trustedBlock(options.headerHtml, "igym-game-header");
  const footer = trustedBlock(options.footerHtml, "igym-game-footer");
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
  root.append(
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
    setText(waitingClock, `Time waited: ${formatClock(performance.now() - input.waitingSince)}`);
  };

  const showWaitingRoom = (): void => {
    stopCountdown();
    showOverlay(input.message || "Waiting for other participants to join…", "", "matching");
    setText(waitingCount, waitingCountText(state.waiting));
    waitingDots.hidden = false;
    renderClock();
    clockTimer ??= window.setInterval(renderClock, CLOCK_TICK_MS);
  };

  const showFinal = (): void => {
    stopCountdown();
    showOverlay("", input.message || "This study has ended for you. Thank you for taking part.", "final");
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
    if (input.errorText !== null) {
      stopCountdown();
      stopClock();
      showOverlay(input.errorText[0], input.errorText[1], "error");
      return;
    }
    if (state.view === "failed") {
      stopCountdown();
      showOverlay("The game could not be loaded", "Please reload the page. If this keeps happening, please contact the researcher.", "error");
      return;
    }
    switch (state.phase) {
      case "countdown": {
        const left = input.countdownEnd - performance.now();
        if (left <= 0) {
          stopCountdown();
          overlay.hidden = true;
          return;
        }
        showOverlay(String(Math.ceil(left / 1000)), episodeText() || input.message, "countdown");
        if (countdownTimer === undefined) countdownTimer = window.setInterval(renderOverlay, COUNTDOWN_TICK_MS);
        return;
      }
      case "playing":
        stopCountdown();
        overlay.hidden = true;
        return;
      case "ended":
        stopCountdown();
        showOverlay("Game over", input.message, "ended");
        return;
      case "matching":
        showWaitingRoom();
        return;
      case "paused":
        // The server stopped the game: its data cannot be saved yet (pause_reason "saving"), or
        // nobody was connected. It resumes by itself with a countdown; the last frame stays below.
        stopCountdown();
        if (state.pause_reason === "saving") showOverlay("Game paused", input.message || SAVING_TEXT, "paused");
        else showOverlay("Game paused", input.message || "The game will go on in a moment.", "paused");
        return;
      default:
        stopCountdown();
        if (state.view === "loading" && state.phase === null) showOverlay("Loading the game…", "", "waiting");
        else showOverlay(input.message || "Waiting for the game to start…", input.message ? "" : episodeText(), "waiting");
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
    if (destroyed) return;
    const availW = wrap.clientWidth;
    if (availW <= 0) return;
    const wrapRect = wrap.getBoundingClientRect();
    const top = wrapRect.top + window.scrollY;
    const card = root.closest(".igym-card");
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
    onResize(cssW, cssH);
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
  resizeObserver?.observe(root);
  resizeObserver?.observe(wrap);
  window.addEventListener("resize", scheduleFit);

  return {
    stage,
    canvasHost,
    input,
    render: renderOverlay,
    renderEpisode: () => setText(episodeLine, episodeText()),
    setNotice,
    setPlayers,
    setHud,
    refit: () => {
      lastFit = "";
      fit();
    },
    destroy: () => {
      destroyed = true;
      stopCountdown();
      stopClock();
      resizeObserver?.disconnect();
      window.removeEventListener("resize", scheduleFit);
      window.cancelAnimationFrame(fitFrame);
    },
  };
}
