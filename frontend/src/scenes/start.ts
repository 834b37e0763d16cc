/** `start` scenes (consent): body, an "I agree" checkbox, continue (disabled until ticked). */

import { append, h, uniqueId } from "../dom";
import type { SceneRenderer } from "../registry";
import type { StartSceneView } from "../types";
import { sceneFooter, sceneHeading, trustedBody } from "./common";

export const startScene: SceneRenderer = (ctx) => {
  const scene = ctx.scene as StartSceneView;
  const baseId = uniqueId("consent");
  const footer = sceneFooter(scene.button_label);

  const checkbox = h("input", {
    type: "checkbox",
    id: `${baseId}-agree`,
    name: "agree",
    class: "igym-consent-input",
    checked: ctx.draft?.agree === true,
    "aria-required": "true",
  });
  const error = h("p", { class: "igym-error", id: `${baseId}-error`, hidden: true });
  const box = h(
    "div",
    { class: "igym-consent" },
    h(
      "label",
      { class: "igym-consent-label", for: checkbox.id },
      checkbox,
      h(
        "span",
        { class: "igym-consent-text" },
        typeof scene.agree_label === "string" && scene.agree_label ? scene.agree_label : "I agree to take part in this study.",
      ),
    ),
    error,
  );

  const setError = (message: string | null) => {
    error.textContent = message ?? "";
    error.hidden = !message;
    box.classList.toggle("has-error", !!message);
    if (message) {
      checkbox.setAttribute("aria-invalid", "true");
      checkbox.setAttribute("aria-describedby", error.id);
    } else {
      checkbox.removeAttribute("aria-invalid");
      checkbox.removeAttribute("aria-describedby");
    }
  };

  const sync = () => {
    footer.setReady(checkbox.checked);
    box.classList.toggle("is-checked", checkbox.checked);
  };
  checkbox.addEventListener("change", () => {
    sync();
    if (checkbox.checked) {
      setError(null);
      footer.setSummary(null);
    }
    ctx.saveDraft(checkbox.checked ? { agree: true } : {});
  });
  sync();

  const form = h("form", { class: "igym-form", novalidate: true });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (footer.busy || !checkbox.checked) return;
    footer.setSummary(null);
    footer.setBusy(true);
    const result = await ctx.submit({ agree: true });
    if (result.ok) return;
    footer.setBusy(false);
    const message = result.errors.agree ?? null;
    setError(message);
    footer.setSummary(result.message || message || "Your answer could not be sent. Please try again.");
    if (message) checkbox.focus();
  });
  append(form, box, footer.el);
  append(ctx.root, sceneHeading(scene.title), trustedBody(scene.body_html), form);
};
