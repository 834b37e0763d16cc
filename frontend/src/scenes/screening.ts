/**
 * `screening` scenes: the page measures what it can and reports it; the server applies the
 * thresholds (igym_core/builtin/scene_screening.py) and either shows the next scene or the end
 * scene with the reasons. Measured: user agent, window and screen size, touch points, pointer and
 * hover media queries, WebGL, a key press on a "press any key" step (when asked), and the
 * round-trip times of `pings` pings over the study's WebSocket, one after another.
 */

import { Float64 } from "../connection";
import { append, h } from "../dom";
import type { SceneRenderer } from "../registry";
import { sceneHeading } from "./common";

const PING_TIMEOUT_MS = 10_000;
const PING_SEQ_BASE = 1_000_000_000; // apart from the connection's own message numbers

function webglAvailable(): boolean {
  try {
    const canvas = document.createElement("canvas");
    return Boolean(canvas.getContext("webgl2") ?? canvas.getContext("webgl"));
  } catch {
    return false;
  }
}

export const screeningScene: SceneRenderer = (ctx) => {
  const scene = ctx.scene as Record<string, unknown>;
  const pings = typeof scene.pings === "number" ? scene.pings : 5;
  const status = h("p", { class: "igym-screening-status", role: "status" }, "Checking your device…");
  append(ctx.root, sceneHeading(scene.title), h("p", {}, String(scene.body ?? "")), status);
  let alive = true;
  const cleanups: (() => void)[] = [];

  const pressAnyKey = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      status.textContent = "Please press any key on your keyboard.";
      status.dataset.step = "keyboard";
      const done = (pressed: boolean) => {
        window.removeEventListener("keydown", onKey, true);
        window.clearTimeout(timer);
        resolve(pressed);
      };
      const onKey = () => done(true);
      window.addEventListener("keydown", onKey, true);
      const timer = window.setTimeout(() => done(false), timeoutMs);
      cleanups.push(() => done(false));
    });

  const ping = (seq: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const sent = performance.now();
      const timer = window.setTimeout(() => {
        off();
        reject(new Error("no pong"));
      }, PING_TIMEOUT_MS);
      const off = ctx.onMessage("pong", (msg) => {
        if (msg.seq !== seq) return;
        window.clearTimeout(timer);
        off();
        resolve(performance.now() - sent);
      });
      ctx.send({ type: "ping", seq, t: new Float64(Date.now()) });
    });

  const run = async () => {
    const keyPressed = scene.require_keyboard
      ? await pressAnyKey(typeof scene.keyboard_timeout_ms === "number" ? scene.keyboard_timeout_ms : 30_000)
      : null;
    if (!alive) return;
    status.textContent = "Measuring your connection…";
    status.dataset.step = "rtt";
    const rtts: number[] = [];
    for (let i = 0; i < pings && alive; i += 1) {
      try {
        rtts.push(Math.round((await ping(PING_SEQ_BASE + i)) * 10) / 10);
      } catch {
        rtts.push(PING_TIMEOUT_MS);
      }
    }
    if (!alive) return;
    status.textContent = "Done. One moment…";
    const media = (query: string) => window.matchMedia?.(query).matches ?? false;
    await ctx.submit({
      user_agent: navigator.userAgent.slice(0, 512),
      window_width: Math.round(window.innerWidth),
      window_height: Math.round(window.innerHeight),
      screen_width: Math.round(window.screen.width),
      screen_height: Math.round(window.screen.height),
      max_touch_points: Math.min(64, navigator.maxTouchPoints || 0),
      pointer_fine: media("(pointer: fine)"),
      hover: media("(hover: hover)"),
      webgl: webglAvailable(),
      key_pressed: keyPressed,
      rtt_ms: rtts,
    });
  };
  void run();
  return {
    destroy() {
      alive = false;
      for (const cleanup of cleanups) cleanup();
    },
  };
};
