/**
 * `end` scenes: body, the completion code (with a Copy button) and, when the server gives a
 * `redirect_url`, a redirect back to the recruitment platform after `redirect_delay_ms`.
 * The server sends this scene only once every record is durably stored, so the redirect is safe.
 */

import { append, h, uniqueId } from "../dom";
import type { SceneRenderer } from "../registry";
import type { EndSceneView } from "../types";
import { sceneHeading, trustedBody } from "./common";
import { followWayBack, parseWayBack } from "./way_back";

const DEFAULT_REDIRECT_DELAY_MS = 3000;

/** Only http(s) URLs are followed (never `javascript:` and the like). */
export function safeRedirectUrl(raw: unknown): string | null {
  if (typeof raw !== "string" || !raw) return null;
  try {
    const url = new URL(raw, window.location.href);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch {
    /* not a URL */
  }
  console.error("igym: ignoring a redirect_url that is not an http(s) URL:", raw);
  return null;
}

function selectText(el: HTMLElement): void {
  const selection = window.getSelection();
  if (!selection) return;
  const range = document.createRange();
  range.selectNodeContents(el);
  selection.removeAllRanges();
  selection.addRange(range);
}

function completionCode(code: string): HTMLElement {
  const baseId = uniqueId("completion-code");
  const codeEl = h("p", { class: "igym-code", id: `${baseId}-value` }, code);
  const status = h("p", { class: "igym-copy-status", role: "status" });
  const button = h("button", { type: "button", class: "igym-button igym-button--secondary igym-copy" }, "Copy");
  let resetTimer: number | undefined;
  const say = (text: string) => {
    status.textContent = text;
    window.clearTimeout(resetTimer);
    resetTimer = window.setTimeout(() => {
      status.textContent = "";
      button.textContent = "Copy";
    }, 4000);
  };
  const fallback = () => {
    selectText(codeEl);
    const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
    say(`The code is selected: press ${mac ? "⌘C" : "Ctrl+C"} to copy it.`);
  };
  button.addEventListener("click", () => {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code).then(
        () => {
          button.textContent = "Copied";
          selectText(codeEl);
          say("The completion code was copied to your clipboard.");
        },
        fallback,
      );
    } else {
      fallback();
    }
  });
  return h(
    "section",
    { class: "igym-completion", "aria-labelledby": `${baseId}-label` },
    h("h2", { class: "igym-completion-label", id: `${baseId}-label` }, "Your completion code"),
    h("div", { class: "igym-code-row" }, codeEl, button),
    status,
  );
}

export const endScene: SceneRenderer = (ctx) => {
  const scene = ctx.scene as EndSceneView;
  const context = ctx.context ?? {};
  const code =
    typeof context.completion_code === "string" || typeof context.completion_code === "number"
      ? String(context.completion_code)
      : "";
  // The recruitment platform's way back, when the study has one, replaces the scene's redirect.
  const wayBack = parseWayBack(context.way_back);
  const redirectUrl = wayBack ? wayBack.url : safeRedirectUrl(context.redirect_url);
  let timer: number | undefined;

  let redirectEl: HTMLElement | null = null;
  if (redirectUrl) {
    const delay =
      typeof scene.redirect_delay_ms === "number" && scene.redirect_delay_ms >= 0
        ? scene.redirect_delay_ms
        : DEFAULT_REDIRECT_DELAY_MS;
    redirectEl = h(
      "div",
      { class: "igym-redirect", role: "status" },
      h("span", { class: "igym-spinner", "aria-hidden": "true" }),
      h(
        "div",
        {},
        h("p", { class: "igym-redirect-title" }, "Returning you to the study platform…"),
        h(
          "p",
          {},
          "If nothing happens, ",
          h("a", { href: redirectUrl, class: "igym-redirect-link" }, "continue to the study platform"),
          ".",
        ),
      ),
    );
    timer = window.setTimeout(
      () => (wayBack ? followWayBack(wayBack) : window.location.assign(redirectUrl)),
      delay,
    );
  }

  // Screened out at entry: the reasons, in plain words, instead of the scene's thanks.
  const reasons = Array.isArray(context.exit_reasons) ? context.exit_reasons.map(String) : [];
  append(
    ctx.root,
    reasons.length ? sceneHeading("You cannot take part in this study") : sceneHeading(scene.title),
    reasons.length
      ? h(
          "section",
          { class: "igym-exit-reasons", "data-outcome": String(context.outcome ?? "") },
          h("p", {}, "We checked your device and connection before starting, and found:"),
          h("ul", {}, ...reasons.map((reason) => h("li", {}, reason))),
        )
      : trustedBody(scene.body_html),
    // The participant's values (EndScene.values_text, filled on the server): plain text, never HTML.
    typeof context.values_text === "string" && context.values_text && !reasons.length
      ? h("p", { class: "igym-values-text", "data-testid": "values-text" }, context.values_text)
      : null,
    code ? completionCode(code) : null,
    redirectEl,
  );
  return {
    destroy() {
      window.clearTimeout(timer);
    },
  };
};
