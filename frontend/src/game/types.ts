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
  /** The runtime that steps the game (default "server"), and its client module's URL if any. */
  runtime?: string;
  runtime_module?: string;
}

export type GamePhase = "matching" | "waiting" | "countdown" | "playing" | "paused" | "ended";

/** `game_status.waiting` while `phase` is "matching" (the waiting room of a multiplayer game). */
export interface WaitingInfo {
  /** Participants waiting now (this one included), or null when the scene hides the count. */
  count: number | null;
  /** How many participants make a group. */
  group_size: number;
  /** How long this participant has waited so far (the client counts on from here). */
  waited_ms: number;
  /** When waiting ends without a group (informational; the server decides). */
  timeout_ms: number;
}

/** One seat of `game_status.players`. */
export interface PlayerInfo {
  seat: string;
  /** This participant's seat. */
  you: boolean;
  status: "connected" | "away" | "bot";
}

export interface GameStatusMessage {
  type: "game_status";
  /** null while matching (no game yet). */
  game_id: string | null;
  phase: GamePhase;
  episode: number;
  num_episodes: number;
  seat?: unknown;
  message?: string;
  countdown_ms?: number;
  /** Phase "matching" only. */
  waiting?: WaitingInfo | null;
  /** A note shown above the canvas while non-empty (e.g. a partner's connection dropped). */
  notice?: string;
  /** Phase "ended": the study is over for this participant; `message` stays on screen. */
  final?: boolean;
  /** With `final`: where the page goes (sent only once the participant's data is stored). */
  redirect_url?: string;
  /** With `final`: the recruitment platform's way back (scenes/way_back.ts), instead of `redirect_url`. */
  way_back?: unknown;
  /** With `redirect_url`: how long the message is shown first (default 1000 ms). */
  redirect_delay_ms?: number;
  /** Phase "paused": `saving` (the data cannot be saved yet) or `nobody_connected`. */
  pause_reason?: string;
  /** The game's seats and who plays them (multiplayer games). */
  players?: PlayerInfo[];
}

/**
 * `{type: "rtt_probe", game_id, n, t}`: answered at once with `rtt_echo {game_id, n,
 * page_delay_ms}`; `t` is the server's wall clock when it sent the probe (epoch ms).
 */
export interface RttProbeMessage {
  type: "rtt_probe";
  game_id: string;
  n: number;
  t?: number;
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
  /** The runtime stepping the game (`scene.runtime`, default "server"). */
  runtime: string;
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
  /** The last `game_status` message ("" for none); kept after the scene moves on. */
  message: string;
  /** Phase "paused": why (`saving`: the data cannot be saved yet; `nobody_connected`); else null. */
  pause_reason: string | null;
  /** The waiting room (phase "matching"): the last `waiting` received, or null. */
  waiting: WaitingInfo | null;
  /** The notice shown above the canvas ("" for none). */
  notice: string;
  /** The study ended for this participant with the last `game_status` (`final: true`). */
  final: boolean;
  /** The last `players` received (null before any). */
  players: PlayerInfo[] | null;
  /** `rtt_echo` messages sent. */
  rtt_echoes: number;
  /** The redirect the page is following after a final status (null if none). */
  redirect_url: string | null;
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
  /** The participant's seat: objects with this `owner` are drawn at their new place at once. */
  ownSeat: string | null;
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
  /** Reflect one applied frame (objects moved by `upd` glide when interpolating, except own ones). */
  apply(frame: AppliedFrame): void;
  /** The participant's seat changed (objects whose `owner` is it are not interpolated). */
  setOwnSeat(seat: string | null): void;
  /** Where object `id` is drawn now (position and angle, mid-glide maybe), or null. */
  drawnPose(id: string): { x: number; y: number; angle: number } | null;
  /** Draw an rgb_array frame (the view takes ownership of the bitmap). */
  showImage(bitmap: ImageBitmap): void;
  /** Display size in CSS pixels (the drawing buffer follows devicePixelRatio). */
  resize(cssWidth: number, cssHeight: number): void;
  destroy(): void;
}

export type CreateGameView = (options: GameViewOptions) => Promise<GameView>;
