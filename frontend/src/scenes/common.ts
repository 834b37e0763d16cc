/** Building blocks shared by the built-in scenes: heading, researcher body, continue footer. */

import { h, setTrustedHtml } from "../dom";

export const DEFAULT_BUTTON_LABEL = "Continue";

export function sceneHeading(title: unknown): HTMLElement | null {
  return typeof title === "string" && title ? h("h1", { class: "igym-title", tabindex: -1 }, title) : null;
}

/** Researcher-authored HTML (a scene's `*_html` field). */
export function trustedBody(html: unknown, extraClass = ""): HTMLElement | null {
  if (typeof html !== "string" || !html.trim()) return null;
  const el = h("div", { class: `igym-prose ${extraClass}`.trim() });
  setTrustedHtml(el, html);
  return el;
}

export interface Footer {
  el: HTMLElement;
  button: HTMLButtonElement;
  /** Message near the button (errors, connection problems). */
  setSummary(text: string | null): void;
  /** Whether the scene allows continuing (consent ticked, minimum time passed…). */
  setReady(ready: boolean): void;
  /** A submit is in flight: the button is disabled meanwhile. */
  setBusy(busy: boolean): void;
  readonly busy: boolean;
  /** Extra note under the button (e.g. "You can continue in 5 seconds"). */
  note: HTMLElement;
}

export function sceneFooter(label: unknown): Footer {
  const button = h(
    "button",
    { type: "submit", class: "igym-button igym-continue" },
    typeof label === "string" && label ? label : DEFAULT_BUTTON_LABEL,
  );
  const summary = h("p", { class: "igym-summary", "aria-live": "polite" });
  const note = h("p", { class: "igym-note", hidden: true });
  let ready = true;
  let busy = false;
  const sync = () => {
    button.disabled = !ready || busy;
    button.classList.toggle("is-busy", busy);
    if (busy) button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  };
  sync();
  return {
    el: h("div", { class: "igym-footer" }, summary, h("div", { class: "igym-actions" }, button), note),
    button,
    note,
    setSummary(text) {
      summary.textContent = text ?? "";
      summary.classList.toggle("is-visible", !!text);
    },
    setReady(value) {
      ready = value;
      sync();
    },
    setBusy(value) {
      busy = value;
      sync();
    },
    get busy() {
      return busy;
    },
  };
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The summary shown near the button after a failed submit. */
export function errorSummary(count: number, serverMessage: string | null): string {
  if (serverMessage) return serverMessage;
  if (count === 1) return "Please correct the highlighted answer above.";
  return `Please correct the ${count} highlighted answers above.`;
}
