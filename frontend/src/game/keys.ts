/**
 * Keyboard input for games (docs/game-protocol.md, "Client → server"). No Phaser.
 *
 * `KeyInput` keeps the state and the pacing; `listenKeyboard` feeds it from DOM events.
 *
 * - held mode: the set of listened keys held now, oldest press first, sent when it changes, at
 *   most once per interval (`1000 / fps` ms): a change within the interval is sent at its end
 *   with the state at that time (so a press and release inside one interval sends nothing).
 * - press mode: the presses since the last send, in order, with the same pacing.
 * - Auto-repeat is ignored; keys typed into text fields are not game input; every key is
 *   released when the window loses focus or the page is hidden.
 * - Nothing is sent while `canSend()` is false (no game yet, or not in countdown/playing):
 *   held keys are still tracked, and `kick()` sends them when sending becomes possible;
 *   presses made meanwhile are dropped.
 */

export type InputMode = "held" | "press";

export interface InputPayload {
  keys?: string[];
  press?: string[];
}

export interface KeyInputOptions {
  mode: InputMode;
  /** Minimum time between two sends (ms). */
  intervalMs: number;
  send(payload: InputPayload): void;
  canSend(): boolean;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** `KeyboardEvent.key` as the protocol names keys: single characters lower-case. */
export function normaliseKey(key: string): string {
  return key.length === 1 ? key.toLowerCase() : key;
}

const TEXT_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT"]);

/** Whether keys aimed at `target` are typing, not playing (input, textarea, select, contenteditable). */
export function isTextEntry(target: EventTarget | null | undefined): boolean {
  if (!target || typeof (target as Element).tagName !== "string") return false;
  const el = target as HTMLElement;
  if (TEXT_TAGS.has(el.tagName.toUpperCase())) return true;
  return el.isContentEditable === true;
}

function sameList(a: readonly string[] | null, b: readonly string[]): boolean {
  if (a === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class KeyInput {
  readonly mode: InputMode;
  private intervalMs: number;
  private readonly sendFn: (payload: InputPayload) => void;
  private readonly canSend: () => boolean;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  /** Held keys, oldest press first. */
  private heldKeys: string[] = [];
  /** Which key a physical key (`KeyboardEvent.code`) pressed, so its release matches (Shift+1 → "!"). */
  private readonly codes = new Map<string, string>();
  private presses: string[] = [];
  /** The held set the server last got; null: unknown (everything is sent at the next chance). */
  private lastSent: string[] | null = [];
  private lastSendAt = Number.NEGATIVE_INFINITY;
  private timer: unknown = undefined;
  private destroyed = false;

  constructor(options: KeyInputOptions) {
    this.mode = options.mode;
    this.intervalMs = Math.max(0, options.intervalMs);
    this.sendFn = options.send;
    this.canSend = options.canSend;
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => window.setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((handle) => window.clearTimeout(handle as number));
  }

  /** The keys held now, oldest first. */
  get held(): string[] {
    return [...this.heldKeys];
  }

  /** The held set last sent (held mode). */
  get sent(): string[] | null {
    return this.lastSent ? [...this.lastSent] : null;
  }

  /** The key a physical key pressed, if it is held. */
  keyForCode(code: string): string | undefined {
    return code ? this.codes.get(code) : undefined;
  }

  setInterval(ms: number): void {
    this.intervalMs = Math.max(0, ms);
  }

  /** A key went down (not auto-repeat). */
  keyDown(key: string, code = ""): void {
    if (this.destroyed) return;
    if (code) this.codes.set(code, key);
    if (this.mode === "press") {
      if (!this.canSend()) return;
      this.presses.push(key);
      this.schedule();
      return;
    }
    if (this.heldKeys.includes(key)) return;
    this.heldKeys.push(key);
    this.schedule();
  }

  /** A key went up. */
  keyUp(key: string, code = ""): void {
    if (this.destroyed) return;
    if (code && this.codes.get(code) === key) {
      this.codes.delete(code);
      // The same key may still be down through another physical key (both Shift keys).
      for (const k of this.codes.values()) if (k === key) return;
    } else {
      for (const [c, k] of this.codes) if (k === key) this.codes.delete(c);
    }
    const i = this.heldKeys.indexOf(key);
    if (i < 0) return;
    this.heldKeys.splice(i, 1);
    this.schedule();
  }

  /** Release every key (window blur, page hidden). */
  releaseAll(): void {
    if (this.destroyed) return;
    this.codes.clear();
    if (this.heldKeys.length === 0) return;
    this.heldKeys = [];
    this.schedule();
  }

  /** The server's view of our keys is unknown (a new connection): send the set again. */
  resync(): void {
    this.lastSent = null;
    this.kick();
  }

  /** A new game: the server starts with nothing held; pending presses belong to the old game. */
  resetForNewGame(): void {
    this.lastSent = [];
    this.presses = [];
    this.kick();
  }

  /** Sending may have become possible (phase change): send what is pending, paced. */
  kick(): void {
    if (!this.canSend()) {
      this.presses = [];
      return;
    }
    this.schedule();
  }

  destroy(): void {
    this.destroyed = true;
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
  }

  private pending(): boolean {
    if (this.mode === "press") return this.presses.length > 0;
    return !sameList(this.lastSent, this.heldKeys);
  }

  private schedule(): void {
    if (this.destroyed || this.timer !== undefined) return;
    if (!this.canSend() || !this.pending()) return;
    const wait = this.lastSendAt + this.intervalMs - this.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = this.setTimer(() => {
      this.timer = undefined;
      if (this.destroyed) return;
      if (!this.canSend()) {
        this.presses = [];
        return;
      }
      if (this.pending()) this.flush();
    }, Math.ceil(wait));
  }

  private flush(): void {
    this.lastSendAt = this.now();
    if (this.mode === "press") {
      const press = this.presses;
      this.presses = [];
      this.sendFn({ press });
      return;
    }
    const keys = [...this.heldKeys];
    this.lastSent = keys;
    this.sendFn({ keys: [...keys] });
  }
}

export interface KeyboardOptions {
  /** The keys the game listens to (normalised). */
  listened: ReadonlySet<string>;
  /** Called after a listened key went down (not for auto-repeat), e.g. to count presses. */
  onActivity?: () => void;
}

const MODIFIERS = new Set(["Control", "Meta", "Alt"]);

/**
 * Feed `input` from the window's keyboard events. Listened keys have their default action
 * prevented (arrows and space do not scroll). A key combined with Ctrl/Meta/Alt is left to the
 * browser (shortcuts keep working) unless that modifier is itself a listened key.
 * Returns a function that removes the listeners.
 */
export function listenKeyboard(win: Window, input: KeyInput, options: KeyboardOptions): () => void {
  const { listened } = options;
  const doc = win.document;

  const shortcut = (e: KeyboardEvent, key: string): boolean => {
    if (MODIFIERS.has(key)) return false;
    return (
      (e.ctrlKey && !listened.has("Control")) ||
      (e.metaKey && !listened.has("Meta")) ||
      (e.altKey && !listened.has("Alt"))
    );
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.isComposing) return;
    const key = normaliseKey(e.key);
    if (!listened.has(key)) return;
    if (isTextEntry(e.target) || isTextEntry(doc.activeElement)) return;
    if (shortcut(e, key)) return;
    e.preventDefault();
    if (e.repeat) return;
    input.keyDown(key, e.code);
    options.onActivity?.();
  };

  const onKeyUp = (e: KeyboardEvent): void => {
    const key = input.keyForCode(e.code) ?? normaliseKey(e.key);
    if (!listened.has(key)) return;
    // A release always counts (the key may have been pressed before a text field took focus).
    if (!isTextEntry(e.target)) e.preventDefault();
    input.keyUp(key, e.code);
  };

  const onBlur = (): void => input.releaseAll();
  const onVisibility = (): void => {
    if (doc.visibilityState === "hidden") input.releaseAll();
  };

  win.addEventListener("keydown", onKeyDown);
  win.addEventListener("keyup", onKeyUp);
  win.addEventListener("blur", onBlur);
  doc.addEventListener("visibilitychange", onVisibility);
  return () => {
    win.removeEventListener("keydown", onKeyDown);
    win.removeEventListener("keyup", onKeyUp);
    win.removeEventListener("blur", onBlur);
    doc.removeEventListener("visibilitychange", onVisibility);
  };
}
