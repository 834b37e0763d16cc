// igym-unity's page module: the renderer of "unity" scenes (a Unity WebGL build as a scene).
//
// Before loading, it checks the window size (the scene's min_width_px / min_height_px; it waits
// for the participant to enlarge the window) and WebGL. Then it loads the build's loader with a
// <script> tag, calls createUnityInstance with a progress bar, and tells the server when the game
// runs (unity_loaded) or could not load (unity_load_failed); the participant then sees the failure
// message and the way out (unity_way_out). When the server's load_timeout_s passes first, the server
// says so (unity_load_timeout) and the page shows the same message and way out.
//
// The bridge: Igym.jslib calls window.igymUnityBridge.send(event, text) with the JSON text the game
// passed. The text is forwarded to the server as a string (unity_event); it is never evaluated or
// parsed here. Calls made before the instance resolved are held and sent after unity_loaded.
// The server's unity_send messages become instance.SendMessage(object, method, value).

const FAILED_TITLE = "The game could not be loaded";
const MAX_HELD = 200;

export function register(api) {
  api.registerScene("unity", (ctx) => mountUnityScene(api, ctx));
}

function mountUnityScene(api, ctx) {
  const h = api.h;
  const scene = ctx.scene;
  const state = (window.igym && window.igym.state) || {};
  const mine = (state.unity = { phase: "starting", progress: 0, loaded: false, episode: null, failed: null });

  const title = scene.title ? h("h2", { class: "igym-title" }, scene.title) : null;
  const statusLine = h("p", { class: "igym-unity-status", "data-testid": "unity-status" }, "");
  const fill = h("span", { class: "igym-progress-fill" });
  const progressText = h("span", { class: "igym-progress-text", "data-testid": "unity-progress-text" }, "0%");
  const progress = h(
    "div",
    { class: "igym-unity-progress", "data-testid": "unity-progress" },
    h("span", { class: "igym-progress-bar" }, fill),
    progressText,
  );
  const canvas = h("canvas", {
    id: "unity-canvas",
    class: "igym-unity-canvas",
    width: String(scene.width_px),
    height: String(scene.height_px),
    tabindex: "-1",
  });
  canvas.style.width = "100%";
  canvas.style.maxWidth = scene.width_px + "px";
  canvas.style.aspectRatio = scene.width_px + " / " + scene.height_px;
  canvas.style.display = "block";
  canvas.style.background = "#10131a";
  const notice = h("div", { class: "igym-unity-notice", "data-testid": "unity-notice", hidden: true });
  const root = h("div", { class: "igym-unity" }, ...(title ? [title] : []), statusLine, progress, notice, canvas);
  root.style.display = "flex";
  root.style.flexDirection = "column";
  root.style.gap = "10px";
  const card = ctx.root.closest(".igym-card");
  if (card) card.style.maxWidth = Math.max(640, scene.width_px + 48) + "px";
  ctx.root.append(root);

  let gameId = null;
  let instance = null;
  let destroyed = false;
  let started = false;
  let loadedSent = false;
  let held = [];
  const cleanups = [];

  function setProgress(value) {
    const p = Math.max(0, Math.min(1, Number(value) || 0));
    mine.progress = p;
    fill.style.width = Math.round(p * 100) + "%";
    progressText.textContent = Math.round(p * 100) + "%";
  }

  function showNotice(text, button) {
    notice.replaceChildren(h("p", {}, text), ...(button ? [button] : []));
    notice.hidden = false;
  }

  // report: false when the server told the page (the load timed out there): nothing to report back.
  function fail(stage, detail, report = true) {
    if (destroyed || mine.failed) return;
    mine.failed = { stage, detail: String(detail).slice(0, 500) };
    mine.phase = "failed";
    console.error("igym: the Unity build could not be loaded:", stage, detail);
    progress.hidden = true;
    canvas.style.display = "none";
    statusLine.textContent = FAILED_TITLE;
    const button = h(
      "button",
      { type: "button", class: "igym-button", "data-testid": "unity-way-out" },
      scene.way_out_label || "Continue",
    );
    // The failure is recorded at once; the way out applies when the participant takes it.
    if (report) ctx.send({ type: "unity_load_failed", game_id: gameId, stage, message: mine.failed.detail });
    button.addEventListener("click", () => {
      button.disabled = true;
      ctx.send({ type: "unity_way_out", game_id: gameId });
    });
    showNotice(scene.failure_message || FAILED_TITLE, button);
  }

  function sendEvent(event, text) {
    ctx.send({ type: "unity_event", game_id: gameId, event, payload: text, t: Date.now() });
  }

  // The bridge Igym.jslib calls: data in, data out. Calls made while the build is still starting
  // are held (at most MAX_HELD; the server refuses calls before unity_loaded).
  const bridge = {
    send(event, text) {
      if (destroyed || typeof event !== "string") return;
      const payload = typeof text === "string" ? text : String(text);
      if (loadedSent) sendEvent(event, payload);
      else if (held.length < MAX_HELD) held.push([event, payload]);
      else console.warn("igym: bridge call dropped while the game was loading:", event);
    },
  };
  window.igymUnityBridge = bridge;

  function windowBigEnough() {
    return window.innerWidth >= (scene.min_width_px || 0) && window.innerHeight >= (scene.min_height_px || 0);
  }

  function hasWebGL() {
    try {
      const probe = document.createElement("canvas");
      return Boolean(probe.getContext("webgl2") || probe.getContext("webgl"));
    } catch (err) {
      return false;
    }
  }

  function loadScript(url) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve(script);
      script.onerror = () => reject(new Error("could not load " + url));
      document.body.append(script);
      cleanups.push(() => script.remove());
    });
  }

  async function start() {
    if (started || destroyed) return;
    if (!windowBigEnough()) {
      mine.phase = "screen";
      progress.hidden = true;
      showNotice(
        `Please make your browser window larger: this game needs at least ${scene.min_width_px} × ` +
          `${scene.min_height_px} pixels (it is ${window.innerWidth} × ${window.innerHeight} now). ` +
          "It starts as soon as the window is large enough.",
      );
      return;
    }
    started = true;
    notice.hidden = true;
    progress.hidden = false;
    if (!hasWebGL()) {
      fail("webgl", "this browser has no WebGL");
      return;
    }
    if (!scene.build) {
      fail("loader", "the server has no build for this scene");
      return;
    }
    mine.phase = "loading";
    statusLine.textContent = "Loading the game…";
    const t0 = performance.now();
    try {
      await loadScript(scene.build.loader_url);
    } catch (err) {
      fail("loader", err && err.message ? err.message : err);
      return;
    }
    if (destroyed || mine.failed) return;
    if (typeof window.createUnityInstance !== "function") {
      fail("loader", "the loader defines no createUnityInstance");
      return;
    }
    try {
      instance = await window.createUnityInstance(
        canvas,
        {
          dataUrl: scene.build.data_url,
          frameworkUrl: scene.build.framework_url,
          codeUrl: scene.build.code_url,
          streamingAssetsUrl: scene.build.streaming_assets_url,
          companyName: "igym",
          productName: scene.scene_id,
          productVersion: "1",
        },
        setProgress,
      );
    } catch (err) {
      fail("instance", err && err.message ? err.message : err);
      return;
    }
    if (destroyed || mine.failed) {
      quit(); // gone, or the server's load_timeout_s passed while it loaded: the way out stands
      return;
    }
    setProgress(1);
    progress.hidden = true;
    mine.loaded = true;
    mine.phase = "playing";
    ctx.send({ type: "unity_loaded", game_id: gameId, ms: Math.round(performance.now() - t0) });
    loadedSent = true;
    const early = held;
    held = [];
    for (const [event, payload] of early) sendEvent(event, payload);
    canvas.focus();
  }

  function quit() {
    if (instance && typeof instance.Quit === "function") {
      try {
        Promise.resolve(instance.Quit()).catch(() => {});
      } catch (err) {
        /* the game is going away anyway */
      }
    }
    instance = null;
  }

  function onResize() {
    if (!started) start();
  }
  window.addEventListener("resize", onResize);
  cleanups.push(() => window.removeEventListener("resize", onResize));

  cleanups.push(
    ctx.onMessage("game_status", (msg) => {
      if (!msg || typeof msg.game_id !== "string") return;
      gameId = msg.game_id;
      mine.episode = msg.episode;
      mine.episodes_done = msg.episodes_done;
      mine.server_phase = msg.phase;
      if (mine.failed && msg.phase !== "ended") return; // the failure and the way out stay shown
      if (msg.phase === "ended") {
        statusLine.textContent = msg.message || "This game is over.";
        quit();
        return;
      }
      statusLine.textContent = `Episode ${msg.episode} of ${msg.num_episodes}`;
      start();
    }),
  );
  cleanups.push(
    ctx.onMessage("unity_load_timeout", (msg) => {
      if (!msg || msg.game_id !== gameId || mine.loaded) return;
      fail("timeout", "the game did not load within the time the study allows", false);
    }),
  );
  cleanups.push(
    ctx.onMessage("unity_send", (msg) => {
      if (!msg || msg.game_id !== gameId || !instance) return;
      if (typeof msg.object !== "string" || typeof msg.method !== "string" || typeof msg.value !== "string") return;
      instance.SendMessage(msg.object, msg.method, msg.value);
    }),
  );

  return {
    destroy() {
      destroyed = true;
      quit();
      if (window.igymUnityBridge === bridge) delete window.igymUnityBridge;
      for (const cleanup of cleanups.splice(0)) {
        try {
          cleanup();
        } catch (err) {
          /* keep destroying */
        }
      }
    },
  };
}
