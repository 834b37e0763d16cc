/**
 * Shared scaffolding of survey questions: the label or legend with its required marker, a hint,
 * and an error message linked to the input(s) with aria-describedby / aria-invalid.
 */

import { h, toggleIdRef, uniqueId } from "../dom";
import type { Question } from "../types";

/** What the survey scene needs from a rendered question. */
export interface QuestionView {
  question: Question;
  /** The element to insert in the form. */
  el: HTMLElement;
  /** The answer value as the protocol defines it for this question kind. */
  getValue(): unknown;
  /** Show (message) or clear (null) the error under the question. */
  setError(message: string | null): void;
  /** Focus the question's first input (used for the first invalid question). */
  focus(): void;
}

/** `onChange` is called on every change of the value (typing included). */
export type QuestionRenderer<Q extends Question> = (
  q: Q,
  initial: unknown,
  onChange: () => void,
) => QuestionView;

export function requiredMarker(required: boolean): HTMLElement | null {
  return required ? h("span", { class: "igym-required", "aria-hidden": "true", title: "required" }, "*") : null;
}

/** The visible prompt text plus required marker, as children of a label or legend. */
export function promptContent(q: Question): (HTMLElement | string)[] {
  const marker = requiredMarker(!!q.required);
  const parts: (HTMLElement | string)[] = [h("span", { class: "igym-prompt-text" }, String(q.prompt ?? ""))];
  if (marker) parts.push(marker);
  return parts;
}

export interface ErrorSlot {
  id: string;
  el: HTMLElement;
  /**
   * Show or clear the message. `describedBy` elements get the error id in aria-describedby;
   * `invalid` elements get aria-invalid="true".
   */
  set(message: string | null, describedBy: readonly Element[], invalid: readonly Element[]): void;
}

export function errorSlot(wrapper: HTMLElement, baseId: string): ErrorSlot {
  const id = `${baseId}-error`;
  const el = h("p", { class: "igym-error", id, hidden: true });
  return {
    id,
    el,
    set(message, describedBy, invalid) {
      const on = !!message;
      el.textContent = message ?? "";
      el.hidden = !on;
      wrapper.classList.toggle("has-error", on);
      for (const target of describedBy) toggleIdRef(target, "aria-describedby", id, on);
      for (const target of invalid) {
        if (on) target.setAttribute("aria-invalid", "true");
        else target.removeAttribute("aria-invalid");
      }
    },
  };
}

export function questionBaseId(q: Question): string {
  return uniqueId(`q-${q.id}`);
}

/** A fieldset with the prompt as legend (choice, scale, options). */
export function groupShell(q: Question, baseId: string, extraClass: string) {
  const legendId = `${baseId}-legend`;
  const legend = h("legend", { class: "igym-legend", id: legendId }, ...promptContent(q));
  const fieldset = h("fieldset", {
    class: `igym-question igym-question--${extraClass}`,
    id: baseId,
    "data-question-id": q.id,
    "data-question-kind": q.kind,
  });
  if (q.required) fieldset.setAttribute("aria-required", "true");
  fieldset.append(legend);
  return { fieldset, legend, legendId };
}

/** A short hint under the prompt, linked with aria-describedby by the caller. */
export function hint(baseId: string, text: string): HTMLElement {
  return h("p", { class: "igym-hint", id: `${baseId}-hint` }, text);
}
