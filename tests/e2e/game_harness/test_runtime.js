// A plugin game runtime for tests/e2e/test_runtime_registry_browser.py: served as a scene's
// runtime_module, it registers runtime "local_test", which plays a game in the page itself (no
// server messages): it feeds the shared shell a status and frames in the server's formats and
// keeps the participant's input; and runtime "status_test", which records the statuses it hears.
export function register(api) {
  api.registerRuntime("local_test", (shell, ctx) => {
    const log = (window.localRuntime = { inputs: [], changes: [], shell, ctx, destroyed: false });
    shell.setInputHandler((payload) => log.inputs.push(payload));
    const off = shell.onChange((reason) => log.changes.push([reason, shell.viewReady]));
    shell.applyStatus({ type: "game_status", game_id: "local-1", phase: "playing", episode: 1, num_episodes: 2, seat: "me", message: "" });
    shell.applyFrame({
      type: "frame", game_id: "local-1", tick: 0, episode: 1, key: true, hud: "Local game",
      add: [
        { id: "mine", object_type: "rect", x: 100, y: 100, width: 40, height: 40, fill: "#ff0000", owner: "me" },
        { id: "theirs", object_type: "rect", x: 300, y: 100, width: 40, height: 40, fill: "#0000ff", owner: "them", tween_ms: 5000 },
        { id: "ball", object_type: "circle", x: 200, y: 200, radius: 10, tween_ms: 5000 },
      ],
    });
    return { destroy() { off(); log.destroyed = true; } };
  });
  // Runtime "status_test" only listens: every game_status it is handed, and those of a second
  // handler that subscribes later (`window.statusRuntime.subscribeLate(type)`).
  api.registerRuntime("status_test", (shell, ctx) => {
    const log = (window.statusRuntime = { statuses: [], late: [], returned: false });
    const off = ctx.onMessage("game_status", (msg) => log.statuses.push([msg.game_id, log.returned]));
    log.returned = true;
    log.subscribeLate = (type) => ctx.onMessage(type, (msg) => log.late.push([msg.type, msg.game_id]));
    return { destroy() { off(); } };
  });
}
