/**
 * Scene renderer registry.
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
 *   `scene` messages are never delivered to subscribers: they replace the renderer.
 * - The renderer may return `{ destroy() }`; it is called before the next scene is mounted.
 *   After that the context's methods do nothing.
 * - Build DOM with `api.h(tag, attrs, ...children)` (text is always text). Only researcher
 *   `*_html` fields may be inserted as HTML, with `api.setTrustedHtml(el, html)`.
 */

import { h, setTrustedHtml } from "./dom";
import type { Answers } from "./types";

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

export interface ClientApi {
  registerScene(kind: string, renderer: SceneRenderer): void;
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
