// The `pyodide` runtime in the page: the game steps in a Web Worker (worker.js) under Pyodide; the
// page draws its frames with the shared game shell, passes the keys to it, and streams its step
// batches to the server, re-sending the ones not yet acknowledged after a reconnect.
//
// createPyodideGame(host) (page_game.js, shared with the `pyodide_p2p` runtime's p2p.js) does the
// work; `register(api)` (bottom) wires it into the client's runtime registry.

import { createPyodideGame } from "./page_game.js";

export { createPyodideGame, loadPlan, MANIFEST_URL } from "./page_game.js";

/**
 * Register the `pyodide` runtime with the client (called by the client after importing this module,
 * the runtime's `client_module`). The shared game shell draws the worker's frames, shows the
 * server's statuses (phases, countdown, episodes, the end) and hands the participant's keys over.
 */
export function register(api) {
  api.registerRuntime("pyodide", (shell, ctx) => {
    const stage = ctx.root.querySelector(".igym-game-stage") || ctx.root;
    const game = createPyodideGame({
      send: (message) => ctx.send(message),
      onMessage: (type, fn) => ctx.onMessage(type, fn),
      drawFrame: (frame) => shell.applyFrame(frame),
      stage,
      scene: ctx.scene,
      showError: (title, text) => shell.showError(title, text),
    });
    shell.state.runtime = "pyodide";
    shell.state.pyodide = game.state;
    shell.setInputHandler((payload) => {
      if (Array.isArray(payload.keys)) game.keys(payload.keys);
      else if (Array.isArray(payload.press)) game.press(payload.press);
    });
    const offStatus = ctx.onMessage("game_status", (msg) => shell.applyStatus(msg));
    return {
      destroy() {
        offStatus();
        shell.setInputHandler(null);
        game.destroy();
      },
    };
  });
}
