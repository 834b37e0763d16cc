/**
 * Boot: read the boot blob, register the built-in scenes, load plugin modules (each one's
 * `register(api)`), then connect.
 *
 * The page needs `<script id="igym-boot" type="application/json">{…}</script>` and this module.
 * The client renders into `#igym-root` (or `#igym-app`) when the page has one, otherwise into a
 * new element at the end of `<body>`. It adds `igym.css` (next to this module) when the page does not link it.
 */

import { App, type ClientState } from "./app";
import { h } from "./dom";
import { clientApi, loadClientModule, registerScene, type ClientApi } from "./registry";
import type { RenderObject } from "./game/objects";
import type { GameDebugState } from "./game/types";
import { endScene } from "./scenes/end";
import { currentDrawnPose, currentGameObjects, gymScene } from "./scenes/gym";
import { startScene } from "./scenes/start";
import { screeningScene } from "./scenes/screening";
import { staticScene } from "./scenes/static";
import { surveyScene } from "./scenes/survey";
import { PROTOCOL_VERSION, type BootData } from "./types";
import { validateQuestion } from "./validation";

export type { ClientApi, GameRuntime, SceneContext, SceneRenderer, SubmitResult } from "./registry";
export type { GameShell } from "./game/shell";
export type { ClientState } from "./app";

/** `window.igym`: the plugin API plus live state, for debugging and browser tests. */
export interface IgymGlobal extends ClientApi {
  /** `game`: the mounted (or last) game scene's counters, see `GameDebugState`; null before any. */
  state: ClientState & { game: GameDebugState | null };
  /** The object descriptions of the mounted game by id (merged wire dicts, targets, not interpolated). */
  gameObjects(): Record<string, RenderObject>;
  /** Where the mounted game draws object `id` now (mid-glide maybe), or null. */
  gameDrawnPose(id: string): { x: number; y: number; angle: number } | null;
  /** The browser's answer check, exactly as the survey uses it (the server runs the same rules). */
  validateQuestion: typeof validateQuestion;
}

declare global {
  interface Window {
    igym?: IgymGlobal;
  }
}

function readBoot(): BootData | null {
  const el = document.getElementById("igym-boot");
  if (!el) {
    console.error('igym: the page has no <script id="igym-boot" type="application/json"> boot blob');
    return null;
  }
  let data: unknown;
  try {
    data = JSON.parse(el.textContent ?? "");
  } catch (err) {
    console.error("igym: the boot blob is not valid JSON", err);
    return null;
  }
  if (!data || typeof data !== "object") return null;
  const d = data as Record<string, unknown>;
  if (typeof d.experiment_id !== "string") {
    console.error("igym: the boot blob has no experiment_id");
    return null;
  }
  if (typeof d.protocol === "number" && d.protocol !== PROTOCOL_VERSION) {
    console.warn(`igym: the page expects protocol ${d.protocol}; this client speaks ${PROTOCOL_VERSION}`);
  }
  return {
    protocol: typeof d.protocol === "number" ? d.protocol : PROTOCOL_VERSION,
    experiment_id: d.experiment_id,
    title: typeof d.title === "string" ? d.title : "",
    ws_path: typeof d.ws_path === "string" && d.ws_path ? d.ws_path : "/ws",
    modules: Array.isArray(d.modules) ? d.modules.filter((m): m is string => typeof m === "string") : [],
    ...(typeof d.max_message_bytes === "number" ? { max_message_bytes: d.max_message_bytes } : {}),
  };
}

function ensureStylesheet(): void {
  const linked = [...document.querySelectorAll<HTMLLinkElement>('link[rel="stylesheet"]')].some((l) =>
    /(^|\/)igym\.css(\?|#|$)/.test(l.getAttribute("href") ?? ""),
  );
  if (linked) return;
  document.head.append(h("link", { rel: "stylesheet", href: new URL("igym.css", import.meta.url).href }));
}

function appContainer(): HTMLElement {
  const existing = document.getElementById("igym-root") ?? document.getElementById("igym-app");
  if (existing) return existing;
  const el = h("div", { id: "igym-root" });
  document.body.append(el);
  return el;
}

async function loadPlugins(modules: string[], api: ClientApi): Promise<void> {
  for (const url of modules) await loadClientModule(url, api);
}

async function boot(): Promise<void> {
  ensureStylesheet();
  const container = appContainer();
  const data = readBoot();

  registerScene("start", startScene);
  registerScene("static", staticScene);
  registerScene("survey", surveyScene);
  registerScene("end", endScene);
  registerScene("gym", gymScene);
  registerScene("screening", screeningScene);

  const api: ClientApi = clientApi();

  if (!data) {
    container.classList.add("igym-app");
    container.append(
      h(
        "main",
        { class: "igym-card" },
        h(
          "section",
          { class: "igym-panel igym-panel--error", role: "alert" },
          h("h1", {}, "This study page is incomplete"),
          h("p", {}, "The page is missing its start-up information. Please contact the researcher."),
        ),
      ),
    );
    return;
  }

  const app = new App(data, container);
  const state = Object.assign(app.state, { game: null as GameDebugState | null });
  window.igym = Object.assign(api, { state, validateQuestion, gameObjects: currentGameObjects, gameDrawnPose: currentDrawnPose });
  await loadPlugins(data.modules, api);
  app.start();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => void boot(), { once: true });
} else {
  void boot();
}
