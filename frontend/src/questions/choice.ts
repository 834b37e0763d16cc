/**
 * `choice` questions: radio buttons (single) or checkboxes (multiple) in a fieldset whose legend
 * is the prompt. The selection logic is shared with `options` (large option cards).
 */

import { append, h, toggleIdRef } from "../dom";
import type { ChoiceQuestion, OptionsQuestion } from "../types";
import { errorSlot, groupShell, hint, questionBaseId, type QuestionRenderer, type QuestionView } from "./common";

export interface SelectionItem {
  value: string;
  label: string;
  description?: string | null;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** "Choose all that apply." / "Choose 2 to 3." … for multiple-selection questions. */
function selectionHint(min: number | null, max: number | null): string {
  if (min !== null && max !== null) {
    return min === max ? `Choose ${plural(min, "answer")}.` : `Choose ${min} to ${max} answers.`;
  }
  if (min !== null && min > 1) return `Choose at least ${plural(min, "answer")}.`;
  if (max !== null) return `Choose up to ${plural(max, "answer")}.`;
  return "Choose all that apply.";
}

export function renderSelection(
  q: ChoiceQuestion | OptionsQuestion,
  items: readonly SelectionItem[],
  initial: unknown,
  onChange: () => void,
  variant: "list" | "cards",
): QuestionView {
  const baseId = questionBaseId(q);
  const multiple = !!q.multiple;
  const { fieldset } = groupShell(q, baseId, variant === "cards" ? "options" : "choice");
  const error = errorSlot(fieldset, baseId);

  const min = q.min_selected ?? null;
  const max = q.max_selected ?? null;
  let hintEl: HTMLElement | null = null;
  const hintText = multiple ? selectionHint(min, max) : null;
  // No hint when the prompt already says it ("… Choose all that apply.").
  if (hintText && !String(q.prompt ?? "").toLowerCase().includes(hintText.toLowerCase().replace(/\.$/, ""))) {
    hintEl = hint(baseId, hintText);
    toggleIdRef(fieldset, "aria-describedby", hintEl.id, true);
  }

  const selected = new Set<string>(
    multiple
      ? Array.isArray(initial)
        ? initial.filter((v): v is string => typeof v === "string")
        : []
      : typeof initial === "string"
        ? [initial]
        : [],
  );

  const inputs: HTMLInputElement[] = [];
  const labels: HTMLLabelElement[] = [];
  const refresh = () => {
    inputs.forEach((input, i) => labels[i]!.classList.toggle("is-checked", input.checked));
  };

  const list = h("div", {
    class: variant === "cards" ? "igym-option-grid" : "igym-choices",
  });
  items.forEach((item, i) => {
    const inputId = `${baseId}-${i}`;
    const input = h("input", {
      type: multiple ? "checkbox" : "radio",
      id: inputId,
      name: baseId,
      value: item.value,
      class: variant === "cards" ? "igym-option-input" : "igym-choice-input",
      checked: selected.has(item.value),
      required: !multiple && q.required ? true : null,
    });
    const descId = `${inputId}-desc`;
    const text =
      variant === "cards"
        ? h(
            "span",
            { class: "igym-option-body" },
            h("span", { class: "igym-option-label" }, item.label),
            item.description ? h("span", { class: "igym-option-desc", id: descId }, item.description) : null,
          )
        : h("span", { class: "igym-choice-label" }, item.label);
    if (variant === "cards" && item.description) input.setAttribute("aria-describedby", descId);
    const label = h(
      "label",
      { class: variant === "cards" ? "igym-option-card" : "igym-choice", for: inputId },
      input,
      text,
    );
    input.addEventListener("change", () => {
      refresh();
      onChange();
    });
    inputs.push(input);
    labels.push(label);
    list.append(label);
  });
  refresh();

  append(fieldset, hintEl, list, error.el);

  return {
    question: q,
    el: fieldset,
    getValue() {
      const values = inputs.filter((input) => input.checked).map((input) => input.value);
      return multiple ? values : (values[0] ?? null);
    },
    setError: (message) => error.set(message, [fieldset], [fieldset, ...inputs]),
    focus() {
      const target = inputs.find((input) => input.checked) ?? inputs[0];
      target?.focus();
    },
  };
}

export const renderChoice: QuestionRenderer<ChoiceQuestion> = (q, initial, onChange) =>
  renderSelection(
    q,
    (q.choices ?? []).map((c) => ({ value: String(c.value), label: String(c.label ?? c.value) })),
    initial,
    onChange,
    "list",
  );
