/** `static` scenes (instructions): body and continue, disabled until `min_duration_ms` passed. */

import { append, h } from "../dom";
import type { SceneRenderer } from "../registry";
import type { StaticSceneView } from "../types";
import { sceneFooter, sceneHeading, trustedBody } from "./common";

export const staticScene: SceneRenderer = (ctx) => {
  const scene = ctx.scene as StaticSceneView;
  const footer = sceneFooter(scene.button_label);
  const minMs = typeof scene.min_duration_ms === "number" && scene.min_duration_ms > 0 ? scene.min_duration_ms : 0;
  const readyAt = performance.now() + minMs;
  let timer: number | undefined;

  const tick = () => {
    const left = readyAt - performance.now();
    if (left <= 0) {
      footer.setReady(true);
      footer.note.hidden = true;
      footer.note.textContent = "";
      return;
    }
    footer.setReady(false);
    const seconds = Math.ceil(left / 1000);
    footer.note.hidden = false;
    footer.note.textContent = `You can continue in ${seconds} second${seconds === 1 ? "" : "s"}.`;
    timer = window.setTimeout(tick, Math.min(1000, left % 1000 || 1000));
  };
  tick();

  const form = h("form", { class: "igym-form", novalidate: true });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (footer.busy || performance.now() < readyAt) return;
    footer.setSummary(null);
    footer.setBusy(true);
    const result = await ctx.submit({});
    if (result.ok) return;
    footer.setBusy(false);
    footer.setSummary(result.message || "This step could not be completed. Please try again.");
  });
  append(form, footer.el);
  append(ctx.root, sceneHeading(scene.title), trustedBody(scene.body_html), form);
  return {
    destroy() {
      window.clearTimeout(timer);
    },
  };
};
