/** `text` questions: a single-line input or a textarea, with a live character counter. */

import { append, h, toggleIdRef } from "../dom";
import type { TextQuestion } from "../types";
import { textLength } from "../validation";
import { errorSlot, hint, promptContent, questionBaseId, type QuestionRenderer } from "./common";

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export const renderText: QuestionRenderer<TextQuestion> = (q, initial, onChange) => {
  const baseId = questionBaseId(q);
  const inputId = `${baseId}-input`;
  const wrapper = h("div", {
    class: "igym-question igym-question--text",
    "data-question-id": q.id,
    "data-question-kind": "text",
  });
  const label = h("label", { class: "igym-label", for: inputId }, ...promptContent(q));

  const attrs = {
    id: inputId,
    name: q.id,
    class: "igym-input",
    placeholder: q.placeholder || null,
    "aria-required": q.required ? "true" : null,
    autocomplete: "off",
    spellcheck: q.multiline ? "true" : null,
  };
  const input = q.multiline
    ? h("textarea", { ...attrs, rows: 5 })
    : h("input", { ...attrs, type: "text" });
  input.value = typeof initial === "string" ? initial : "";

  const minLength = typeof q.min_length === "number" && q.min_length > 0 ? q.min_length : null;
  const maxLength = typeof q.max_length === "number" ? q.max_length : null;

  const hintText =
    minLength !== null && maxLength !== null
      ? `Between ${minLength} and ${plural(maxLength, "character")}.`
      : minLength !== null
        ? `At least ${plural(minLength, "character")}.`
        : null;
  const hintEl = hintText ? hint(baseId, hintText) : null;
  if (hintEl) toggleIdRef(input, "aria-describedby", hintEl.id, true);

  const error = errorSlot(wrapper, baseId);

  let counter: HTMLElement | null = null;
  let counterLive: HTMLElement | null = null;
  let liveTimer: number | undefined;
  if (maxLength !== null) {
    counter = h("p", { class: "igym-counter", id: `${baseId}-counter`, "aria-hidden": "true" });
    // Screen readers hear the count when they pause typing, not on every keystroke.
    counterLive = h("p", { class: "igym-visually-hidden", "aria-live": "polite" });
    const counterDesc = h("span", { class: "igym-visually-hidden", id: `${baseId}-counter-desc` });
    wrapper.append(counterDesc);
    toggleIdRef(input, "aria-describedby", counterDesc.id, true);
  }

  const updateCounter = (announce: boolean) => {
    if (!counter || maxLength === null) return;
    const length = textLength(input.value);
    const left = maxLength - length;
    const text =
      left >= 0 ? `${plural(left, "character")} remaining` : `${plural(-left, "character")} too many`;
    counter.textContent = text;
    counter.classList.toggle("is-over", left < 0);
    counter.classList.toggle("is-near", left >= 0 && left <= Math.max(5, Math.floor(maxLength * 0.1)));
    const desc = wrapper.querySelector(`#${CSS.escape(baseId)}-counter-desc`);
    if (desc) desc.textContent = `You can enter up to ${plural(maxLength, "character")}; ${text}.`;
    if (announce && counterLive) {
      window.clearTimeout(liveTimer);
      liveTimer = window.setTimeout(() => {
        if (counterLive) counterLive.textContent = text;
      }, 1000);
    }
  };
  updateCounter(false);

  input.addEventListener("input", () => {
    updateCounter(true);
    onChange();
  });
  if (!q.multiline) {
    // A study cannot go back: Enter in a one-line answer must not submit the page.
    input.addEventListener("keydown", (event) => {
      const e = event as KeyboardEvent;
      if (e.key === "Enter" && !e.isComposing) e.preventDefault();
    });
  }

  const footer = h("div", { class: "igym-question-footer" }, error.el, counter);
  append(wrapper, label, hintEl, input, footer, counterLive);

  return {
    question: q,
    el: wrapper,
    getValue: () => input.value,
    setError: (message) => error.set(message, [input], [input]),
    focus: () => input.focus(),
  };
};
