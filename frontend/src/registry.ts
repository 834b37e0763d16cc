/**
 * Scene renderer and game runtime registries.
 *
 * Every scene the server sends has a `kind`. The client looks the kind up here and calls the
 * renderer registered for it. The built-in kinds (`start`, `static`, `survey`, `end`) are
 * registered at boot; plugins add their own from the ES modules listed in the boot blob's
 * `modules`: the client `import()`s each module before connecting and calls its exported
 * `register(api)`.
 *
 * Writing a plugin renderer
 * -------------------------
 *
 *   // my_plugin/entry.js  (served by the plugin through igym_register_client_assets)
 *   export function register(api) {
 *     api.registerScene("reaction_time", (ctx) => {
 *       const button = api.h("button", { type: "button", class: "igym-button" }, "Go");
 *       ctx.root.append(api.h("h1", {}, ctx.scene.title), button);
 *       const off = ctx.onMessage("game_state", (msg) => { ... });
 *       button.addEventListener("click", async () => {
 *         const result = await ctx.submit({ rt_ms: 312 });
 *         if (!result.ok) console.log(result.message, result.errors);
 *       });
 *       return { destroy() { off(); } };
 *     });
 *   }
 *
 * The renderer contract:
 *
 * - `ctx.root` is an empty element inside the page's card that the renderer owns until it is
 *   destroyed. The card carries `data-scene-kind="<kind>"`, so plugin CSS can restyle it
 *   (e.g. `.igym-card[data-scene-kind="reaction_time"] { max-width: none }`).
 * - `ctx.scene` is the message's `scene` field (`kind`, `scene_id`, and the scene's own fields),
 *   `ctx.context` its `context`, `ctx.draft` the answers to restore after a reload, and
 *   `position` / `total` / `instance` the scene's place in the participant's sequence.
 * - `ctx.saveDraft(answers)` stores work in progress (debounced 300 ms, sent as `draft`).
 * - `ctx.submit(answers)` sends `submit` and resolves with `{ok: true}` once the server has
 *   stored the response (`ack`; the next `scene` follows and the core then destroys this
 *   renderer and mounts the next one), or `{ok: false, errors, message}` when the server
 *   rejected the answers (`errors` by question id), or when the connection was lost before
 *   the server answered (`errors` empty). Keep the participant's answers on failure.
 * - `ctx.send(message)` sends a raw protocol message (e.g. game input); `ctx.onMessage(type, fn)`
 *   subscribes to server messages of another type while mounted (returns an unsubscribe
 *   function; every subscription is removed automatically when the renderer is destroyed).
 *   `scene` messages are never delivered to subscribers: they replace the renderer. A message
 *   of a stateful type (`game_status`: each is the whole current state) that arrived during this
 *   scene before a handler subscribed is handed to that handler at once (the latest one, in a
 *   microtask), so a late subscriber starts from the current state.
 * - The renderer may return `{ destroy() }`; it is called before the next scene is mounted.
 *   After that the context's methods do nothing.
 * - Build DOM with `api.h(tag, attrs, ...children)` (text is always text). Only researcher
 *   `*_html` fields may be inserted as HTML, with `api.setTrustedHtml(el, html)`.
 *
 * Game runtimes
 * -------------
 *
 * A game scene (kind `gym`) names the runtime that steps its game in `scene.runtime` (default
 * `"server"`, built in: `runtimes/server.ts`). The gym scene builds the shared game shell (canvas
 * and Phaser view, key input with the scene's keys and held/press semantics, HUD, countdown,
 * overlays, waiting room, status and players lines) and hands it to the runtime registered for
 * that kind. When none is registered yet and the scene has `runtime_module` (the URL of the
 * runtime plugin's client module), the client `import()`s it, calls its `register(api)`, and
 * looks again; a runtime that is still missing is shown to the participant as an error (the kind
 * is logged on the console).
 *
 *   // my_runtime/client.js  (the Runtime's client_module, served by its plugin)
 *   export function register(api) {
 *     api.registerRuntime("my_runtime", (shell, ctx) => {
 *       shell.setInputHandler((payload) => worker.postMessage({ input: payload }));
 *       worker.onmessage = (e) => {
 *         if (e.data.status) shell.applyStatus(e.data.status);  // game_status shape
 *         if (e.data.frame) shell.applyFrame(e.data.frame);     // frame shape: add/upd/rm/hud
 *       };
 *       const off = shell.onChange((reason) => {
 *         if (reason === "view" && shell.viewReady) ctx.send({ type: "runtime_loaded", ... });
 *       });
 *       const offMsg = ctx.onMessage("my_episode", (msg) => { ... });
 *       return { destroy() { off(); offMsg(); worker.terminate(); } };
 *     });
 *   }
 *
 * The runtime contract (`GameShell` in `game/shell.ts`):
 *
 * - `shell.applyStatus(msg)` takes a `game_status` message (docs/game-protocol.md): `game_id`,
 *   `phase` (`matching`, `waiting`, `countdown`, `playing`, `paused`, `ended`), `episode`,
 *   `num_episodes`, `seat`, `message`, `countdown_ms`, `notice`, `players`, `final`, … and shows it.
 *   A runtime may apply the server's statuses as they come (the server runtime does) or build its
 *   own. Input is collected only while a game id is known and the phase is `countdown`/`playing`.
 * - `shell.applyFrame(msg)` takes a frame in the server's `frame` format (`tick`, `episode`, `key`
 *   keyframe with `add`, or deltas `upd`/`rm`, `hud`, or an rgb_array `image`). A runtime that
 *   produces the same frames draws exactly like the server runtime. Objects whose `owner` is the
 *   status's `seat` (the participant's own) are drawn at their new place at once; others glide.
 * - `shell.setInputHandler(fn)` receives the participant's input, `{keys: [...]}` (held mode: the
 *   full held set, on change, at most once per frame interval) or `{press: [...]}` (press mode).
 *   `shell.input.resync()` sends the held set again (e.g. after a reconnect).
 * - `shell.onChange(fn)` is called with `"status"` after each applied status and `"view"` once
 *   the view is ready (`shell.viewReady`: assets loaded; a handler subscribed after that is told
 *   `"view"` at once, so a runtime whose module loaded late still hears it); start a game only
 *   once it is ready.
 * - `shell.showError(title, text)` replaces the game with an error (e.g. the runtime failed to
 *   load); `shell.state` is `window.igym.state.game` (runtimes may add fields of their own).
 * - `ctx` is the scene's `SceneContext` (`send`, `onMessage`, …). The runtime's `destroy()` is
 *   called when the scene is left, before the shell is destroyed.
 */

import { h, setTrustedHtml } from "./dom";
import type { GameShell } from "./game/shell";
import { PROTOCOL_VERSION, type Answers } from "./types";

export type SubmitResult =
  | { ok: true }
  | { ok: false; errors: Record<string, string>; message: string };

export interface SceneContext {
  /** An empty element the renderer owns until destroyed. */
  root: HTMLElement;
  /** The `scene` field of the message (kind, scene_id, …). */
  scene: Record<string, any>;
  /** The `context` field of the message (per-participant values). */
  context: Record<string, any>;
  /** Answers to restore. */
  draft: Record<string, any>;
  position: number;
  total: number;
  instance: number;
  /** Debounced 300 ms; sends `draft`. */
  saveDraft(answers: Record<string, any>): void;
  submit(
    answers: Record<string, any>,
  ): Promise<{ ok: true } | { ok: false; errors: Record<string, string>; message: string }>;
  /** Send a raw message (for plugins, e.g. game input). */
  send(message: Record<string, any>): void;
  /** Subscribe to other server message types while mounted; returns an unsubscribe function. */
  onMessage(type: string, handler: (msg: any) => void): () => void;
}

export type SceneRenderer = (ctx: SceneContext) => { destroy?(): void } | void;

/** A game runtime's client: drives the shell of one game scene (see "Game runtimes" above). */
export type GameRuntime = (shell: GameShell, ctx: SceneContext) => { destroy?(): void } | void;

export interface ClientApi {
  registerScene(kind: string, renderer: SceneRenderer): void;
  registerRuntime(kind: string, runtime: GameRuntime): void;
  h: typeof h;
  setTrustedHtml: typeof setTrustedHtml;
  protocol: number;
}

export type { Answers };

const renderers = new Map<string, SceneRenderer>();

/**
 * Register the renderer for scenes of `kind`. A kind can be registered once: a second
 * registration is refused with a console error naming the kind (the first one stays).
 * Returns whether the renderer was registered.
 */
export function registerScene(kind: string, renderer: SceneRenderer): boolean {
  if (typeof kind !== "string" || kind === "") {
    console.error("igym: registerScene() needs a non-empty string kind, got", kind);
    return false;
  }
  if (typeof renderer !== "function") {
    console.error(`igym: registerScene("${kind}") needs a renderer function, got`, renderer);
    return false;
  }
  if (renderers.has(kind)) {
    console.error(
      `igym: a scene renderer for kind "${kind}" is already registered; ` +
        `the duplicate registration of "${kind}" was rejected (two plugins provide the same scene kind?)`,
    );
    return false;
  }
  renderers.set(kind, renderer);
  return true;
}

export function getSceneRenderer(kind: string): SceneRenderer | undefined {
  return renderers.get(kind);
}

export function registeredKinds(): string[] {
  return [...renderers.keys()];
}

const runtimes = new Map<string, GameRuntime>();

/**
 * Register the client of game runtime `kind` (a game scene's `runtime`). A kind can be registered
 * once: a second registration is refused with a console error naming the kind (the first one
 * stays). Returns whether the runtime was registered.
 */
export function registerRuntime(kind: string, runtime: GameRuntime): boolean {
  if (typeof kind !== "string" || kind === "") {
    console.error("igym: registerRuntime() needs a non-empty string kind, got", kind);
    return false;
  }
  if (typeof runtime !== "function") {
    console.error(`igym: registerRuntime("${kind}") needs a runtime function, got`, runtime);
    return false;
  }
  if (runtimes.has(kind)) {
    console.error(
      `igym: a game runtime "${kind}" is already registered; ` +
        `the duplicate registration of "${kind}" was rejected (two plugins provide the same runtime?)`,
    );
    return false;
  }
  runtimes.set(kind, runtime);
  return true;
}

export function getRuntime(kind: string): GameRuntime | undefined {
  return runtimes.get(kind);
}

export function registeredRuntimes(): string[] {
  return [...runtimes.keys()];
}

/** The API handed to plugin modules' `register(api)`. */
export function clientApi(): ClientApi {
  return { registerScene, registerRuntime, h, setTrustedHtml, protocol: PROTOCOL_VERSION };
}

const loadedModules = new Map<string, Promise<boolean>>();

/**
 * `import()` a plugin client module and call its `register(api)`, once per URL (a second call
 * returns the first one's promise). Resolves with whether it registered; failures are logged.
 */
export function loadClientModule(url: string, api: ClientApi = clientApi()): Promise<boolean> {
  let loading = loadedModules.get(url);
  if (!loading) {
    loading = (async () => {
      try {
        const mod: Record<string, unknown> = await import(url);
        if (typeof mod.register !== "function") {
          console.error(`igym: plugin module ${url} does not export a register(api) function`);
          return false;
        }
        await (mod.register as (api: ClientApi) => unknown)(api);
        return true;
      } catch (err) {
        console.error(`igym: loading plugin module ${url} failed`, err);
        loadedModules.delete(url); // a network failure may be retried by the next scene
        return false;
      }
    })();
    loadedModules.set(url, loading);
  }
  return loading;
}
