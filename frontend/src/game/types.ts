/**
 * Shapes of game scenes on the wire (docs/game-protocol.md) and the interface between the
 * light renderer (`scenes/gym.ts`, in the main bundle) and the Phaser view (`game/view.ts`,
 * a separate chunk loaded with `import()`). Types only: importing this file adds no code.
 */

import type { AppliedFrame, RenderObject } from "./objects";

export interface AssetSpec {
  type: "image" | "spritesheet" | "atlas" | string;
  key: string;
  url: string;
  frame_width?: number;
  frame_height?: number;
  atlas_url?: string;
}

/** `scene` of kind "gym". */
export interface GymSceneView {
  kind: "gym";
  scene_id: string;
  fps: number;
  canvas: { width: number; height: number; background?: string };
  input_mode: "held" | "press";
  keys: string[];
  header_html?: string;
  footer_html?: string;
  renderer: "objects" | "rgb_array";
  assets: AssetSpec[];
  interpolate?: boolean;
}

export type GamePhase = "waiting" | "countdown" | "playing" | "ended";

export interface GameStatusMessage {
  type: "game_status";
  game_id: string;
  phase: GamePhase;
  episode: number;
  num_episodes: number;
  seat?: unknown;
  message?: string;
  countdown_ms?: number;
}

export interface FrameMessage {
  type: "frame";
  game_id: string;
  tick: number;
  episode?: number;
  step?: number;
  t?: number;
  key?: boolean;
  hud?: string;
  add?: RenderObject[];
  upd?: Array<Partial<RenderObject> & { id: string }>;
  rm?: string[];
  image?: Uint8Array;
}

/** `window.igym.state.game`: the mounted (or last) game scene, for debugging and tests. */
export interface GameDebugState {
  game_id: string | null;
  /** The last `game_status` phase; null before the first one. */
  phase: GamePhase | null;
  episode: number;
  num_episodes: number;
  seat: unknown;
  /** `tick` of the last frame applied. */
  tick: number | null;
  /** Frames applied, and how many of them were keyframes. */
  frames: number;
  keyframes: number;
  /** rgb_array frames skipped because a newer one arrived while decoding. */
  dropped_images: number;
  /** Objects in the table now. */
  objects: number;
  hud: string;
  /** The held set last sent (held mode). */
  keys: string[];
  /** Input messages sent. */
  inputs_sent: number;
  /** The Phaser view: "loading", "ready" (assets loaded), or "failed". */
  view: "loading" | "ready" | "failed";
  /** Phaser's renderer once ready: "webgl" or "canvas". */
  renderer: string | null;
  /** How many `game_ready` messages were sent. */
  ready_sent: number;
}

export interface GameViewOptions {
  /** The element Phaser puts its canvas in. */
  parent: HTMLElement;
  width: number;
  height: number;
  /** `"#rrggbb"`. */
  background: string;
  assets: AssetSpec[];
  fps: number;
  interpolate: boolean;
  /** Aborting before the view is ready destroys the game and rejects the promise. */
  signal?: AbortSignal;
}

/** The Phaser side. Created by `createGameView` (resolves once assets are loaded). */
export interface GameView {
  /** "webgl" or "canvas". */
  readonly rendererType: string;
  /** URLs of assets that failed to load. */
  readonly failedAssets: readonly string[];
  /** Drop every game object and draw these (snapped into place). */
  reset(objects: readonly RenderObject[]): void;
  /** Reflect one applied frame (objects moved by `upd` glide when interpolating). */
  apply(frame: AppliedFrame): void;
  /** Draw an rgb_array frame (the view takes ownership of the bitmap). */
  showImage(bitmap: ImageBitmap): void;
  /** Display size in CSS pixels (the drawing buffer follows devicePixelRatio). */
  resize(cssWidth: number, cssHeight: number): void;
  destroy(): void;
}

export type CreateGameView = (options: GameViewOptions) => Promise<GameView>;
