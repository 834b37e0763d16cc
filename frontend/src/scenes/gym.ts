/**
 * Scene kind "gym": a game (docs/game-protocol.md). The scene builds the shared game shell
 * (`game/shell.ts`) and hands it to the client of the runtime that steps the game
 * (`scene.runtime`, default `"server"`; see "Game runtimes" in `registry.ts`). A runtime that is
 * not registered yet is loaded from `scene.runtime_module` first.
 */

import { createGameShell, type GameShell } from "../game/shell";
import { getRuntime, loadClientModule, registeredRuntimes as registeredRuntimesNow, registerRuntime, type GameRuntime, type SceneContext, type SceneRenderer } from "../registry";
import { serverRuntime } from "../runtimes/server";

export {
  currentDrawnPose,
  currentGameObjects,
  formatClock,
  gameLabel,
  keyLabel,
  parsePlayers,
  parseWaiting,
  playersText,
  waitingCountText,
} from "../game/shell";

/** The runtime of scenes that name none. */
export const DEFAULT_RUNTIME = "server";

registerRuntime(DEFAULT_RUNTIME, serverRuntime);

const MISSING_TITLE = "The game could not be started";
const MISSING_TEXT = "Please reload the page. If this keeps happening, please contact the researcher.";

function startRuntime(runtime: GameRuntime, kind: string, shell: GameShell, ctx: SceneContext): (() => void) | null {
  try {
    const handle = runtime(shell, ctx);
    return handle && typeof handle.destroy === "function" ? () => handle.destroy!() : null;
  } catch (err) {
    console.error(`igym: the game runtime "${kind}" failed to start`, err);
    shell.showError(MISSING_TITLE, MISSING_TEXT);
    return null;
  }
}

export const gymScene: SceneRenderer = (ctx) => {
  const raw = ctx.scene.runtime;
  const kind = typeof raw === "string" && raw ? raw : DEFAULT_RUNTIME;
  const moduleUrl = typeof ctx.scene.runtime_module === "string" ? ctx.scene.runtime_module : "";
  const shell = createGameShell(ctx);
  shell.state.runtime = kind;
  let stopRuntime: (() => void) | null = null;

  const missing = (): void => {
    console.error(
      `igym: no client for the game runtime "${kind}" ` +
        (moduleUrl ? `(its module ${moduleUrl} registered none)` : "(the scene names no runtime_module)") +
        `; registered runtimes: ${JSON.stringify(registeredRuntimesNow())}`,
    );
    shell.showError(MISSING_TITLE, MISSING_TEXT);
  };

  const registered = getRuntime(kind);
  if (registered) {
    stopRuntime = startRuntime(registered, kind, shell, ctx);
  } else if (moduleUrl) {
    // The server's first status (it names the game) can arrive while the module loads: the
    // runtime's `game_status` handlers get it when they subscribe (`ctx.onMessage` keeps the latest
    // message of a stateful type; see subscriptions.ts).
    void loadClientModule(moduleUrl).then(() => {
      if (!shell.alive) return;
      const loaded = getRuntime(kind);
      if (loaded) stopRuntime = startRuntime(loaded, kind, shell, ctx);
      else missing();
    });
  } else {
    missing();
  }

  return {
    destroy() {
      try {
        stopRuntime?.();
      } catch (err) {
        console.error(`igym: the game runtime "${kind}" failed to stop`, err);
      }
      shell.destroy();
    },
  };
};
