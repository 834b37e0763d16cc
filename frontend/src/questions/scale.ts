/**
 * `scale` questions.
 *
 * - `likert`: a row of radio buttons, one per point from `min` to `max` by `step`, each with its
 *   number and (where the researcher gave one) its anchor label under it. On narrow screens the
 *   row becomes a vertical list.
 * - `slider`: a range input with the anchor labels under it and the chosen value shown. It counts
 *   as unanswered (value null, `aria-valuetext="Not answered yet"`) until the participant moves
 *   or clicks it.
 */

import { append, h, toggleIdRef } from "../dom";
import type { ScaleQuestion } from "../types";
import { onScale } from "../validation";
import { errorSlot, groupShell, questionBaseId, type QuestionRenderer, type QuestionView } from "./common";

const MAX_LIKERT_POINTS = 101;

/** Round away floating-point noise (0.1 + 0.2) without changing meaningful decimals. */
function clean(x: number): number {
  return Number(x.toFixed(10));
}

export function scalePoints(q: ScaleQuestion): number[] {
  const step = q.step > 0 ? q.step : 1;
  const count = Math.floor((q.max - q.min) / step + 1e-9) + 1;
  const points: number[] = [];
  // Counting stops past the Likert limit: such a scale is shown as a slider.
  for (let i = 0; i < Math.min(count, MAX_LIKERT_POINTS + 1); i++) points.push(clean(q.min + i * step));
  return points;
}

function sameNumber(a: number, b: number): boolean {
  return Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

function anchorFor(q: ScaleQuestion, value: number): string | null {
  const found = (q.labels ?? []).find((l) => typeof l.value === "number" && sameNumber(l.value, value));
  return found ? String(found.label) : null;
}

function formatNumber(x: number): string {
  return String(clean(x));
}

export const renderScale: QuestionRenderer<ScaleQuestion> = (q, initial, onChange) => {
  const points = scalePoints(q);
  if (q.style === "slider" || points.length > MAX_LIKERT_POINTS) return renderSlider(q, initial, onChange);
  return renderLikert(q, points, initial, onChange);
};

/**
 * Grid columns (1-based, inclusive) for the anchor label of the point in column `c`, so that
 * anchors never overlap: each gets the columns up to halfway to its neighbours, symmetric around
 * its point, except at the two ends, where the label is aligned to the edge of the scale.
 */
function anchorSpan(c: number, prev: number | null, next: number | null, n: number) {
  const lo = prev === null ? 1 : Math.floor((prev + c) / 2) + 1;
  const hi = next === null ? n : Math.ceil((c + next) / 2) - 1;
  if (c === 1 && n > 1) return { from: 1, to: Math.max(1, hi), align: "start" as const };
  if (c === n && n > 1) return { from: Math.min(n, lo), to: n, align: "end" as const };
  const w = Math.max(0, Math.min(c - lo, hi - c));
  return { from: c - w, to: c + w, align: "center" as const };
}

function renderLikert(q: ScaleQuestion, points: number[], initial: unknown, onChange: () => void): QuestionView {
  const baseId = questionBaseId(q);
  const { fieldset } = groupShell(q, baseId, "scale");
  fieldset.classList.add("igym-question--likert");
  const error = errorSlot(fieldset, baseId);
  const n = points.length;

  const row = h("div", {
    class: `igym-likert${n > 7 ? " is-wide" : ""}`,
    style: { gridTemplateColumns: `repeat(${n}, minmax(0, 1fr))` } as Partial<CSSStyleDeclaration>,
  });
  const inputs: HTMLInputElement[] = [];
  const labels: HTMLLabelElement[] = [];
  const refresh = () => inputs.forEach((input, i) => labels[i]!.classList.toggle("is-checked", input.checked));

  const anchored: { column: number; text: string; inputId: string }[] = [];
  points.forEach((value, i) => {
    const inputId = `${baseId}-${i}`;
    const anchor = anchorFor(q, value);
    if (anchor) anchored.push({ column: i + 1, text: anchor, inputId });
    const input = h("input", {
      type: "radio",
      id: inputId,
      name: baseId,
      value: formatNumber(value),
      class: "igym-likert-input",
      checked: typeof initial === "number" && sameNumber(initial, value),
      required: q.required ? true : null,
      "aria-label": anchor ? `${formatNumber(value)} – ${anchor}` : formatNumber(value),
    });
    input.addEventListener("change", () => {
      refresh();
      onChange();
    });
    const label = h(
      "label",
      { class: "igym-likert-point", for: inputId, style: { gridColumn: String(i + 1), gridRow: "1" } as Partial<CSSStyleDeclaration> },
      input,
      h("span", { class: "igym-likert-value", "aria-hidden": "true" }, formatNumber(value)),
      // Shown beside the point when the scale is laid out as a vertical list (narrow screens).
      anchor ? h("span", { class: "igym-likert-anchor igym-likert-anchor--inline", "aria-hidden": "true" }, anchor) : null,
    );
    inputs.push(input);
    labels.push(label);
    row.append(label);
  });

  // Anchor labels in a second row, under their points (also clickable: labels of the same input).
  anchored.forEach((a, k) => {
    const span = anchorSpan(a.column, anchored[k - 1]?.column ?? null, anchored[k + 1]?.column ?? null, n);
    row.append(
      h(
        "label",
        {
          class: `igym-likert-anchor igym-likert-anchor--row is-${span.align}`,
          for: a.inputId,
          "aria-hidden": "true",
          style: { gridColumn: `${span.from} / ${span.to + 1}`, gridRow: "2" } as Partial<CSSStyleDeclaration>,
        },
        a.text,
      ),
    );
  });
  refresh();
  append(fieldset, row, error.el);

  return {
    question: q,
    el: fieldset,
    getValue() {
      const index = inputs.findIndex((input) => input.checked);
      return index >= 0 ? points[index]! : null;
    },
    setError: (message) => error.set(message, [fieldset], [fieldset, ...inputs]),
    focus() {
      (inputs.find((input) => input.checked) ?? inputs[0])?.focus();
    },
  };
}

function renderSlider(q: ScaleQuestion, initial: unknown, onChange: () => void): QuestionView {
  const baseId = questionBaseId(q);
  const inputId = `${baseId}-input`;
  const { fieldset } = groupShell(q, baseId, "scale");
  fieldset.classList.add("igym-question--slider");
  const error = errorSlot(fieldset, baseId);
  const step = q.step > 0 ? q.step : 1;
  const span = q.max - q.min;

  // Starts in the middle (on a step) but counts as unanswered until moved.
  const middle = clean(q.min + Math.round(span / 2 / step) * step);
  const restored = typeof initial === "number" && onScale(q, initial) ? initial : null;
  let answered = restored !== null;

  const input = h("input", {
    type: "range",
    id: inputId,
    name: baseId,
    class: "igym-slider-input",
    min: q.min,
    max: q.max,
    step,
    "aria-required": q.required ? "true" : null,
  });
  input.value = String(restored ?? middle);

  const valueText = h("p", { class: "igym-slider-value", id: `${baseId}-value`, "aria-hidden": "true" });
  const anchors = h("div", { class: "igym-slider-anchors", "aria-hidden": "true" });
  for (const l of q.labels ?? []) {
    if (typeof l.value !== "number" || span <= 0) continue;
    const p = Math.min(1, Math.max(0, (l.value - q.min) / span));
    anchors.append(
      h(
        "span",
        {
          class: "igym-slider-anchor",
          style: {
            left: `${p * 100}%`,
            transform: `translateX(${-p * 100}%)`,
            textAlign: p < 0.15 ? "left" : p > 0.85 ? "right" : "center",
          } as Partial<CSSStyleDeclaration>,
        },
        String(l.label),
      ),
    );
  }
  // Anchors are shown visually; screen readers get them through aria-describedby.
  const anchorText = (q.labels ?? [])
    .filter((l) => typeof l.value === "number")
    .map((l) => `${formatNumber(l.value)} means ${l.label}`)
    .join("; ");
  const anchorDesc = anchorText
    ? h(
        "span",
        { class: "igym-visually-hidden", id: `${baseId}-anchors` },
        `From ${formatNumber(q.min)} to ${formatNumber(q.max)}. ${anchorText}.`,
      )
    : h("span", { class: "igym-visually-hidden", id: `${baseId}-anchors` }, `From ${formatNumber(q.min)} to ${formatNumber(q.max)}.`);
  toggleIdRef(input, "aria-describedby", anchorDesc.id, true);

  const label = h("label", { class: "igym-visually-hidden", for: inputId }, String(q.prompt ?? ""));

  const update = () => {
    fieldset.classList.toggle("is-unanswered", !answered);
    input.classList.toggle("is-unanswered", !answered);
    const value = Number(input.value);
    const pct = span > 0 ? ((value - q.min) / span) * 100 : 0;
    input.style.setProperty("--igym-fill", answered ? `${pct}%` : "0%");
    if (!answered) {
      input.setAttribute("aria-valuetext", "Not answered yet");
      valueText.textContent = "Not answered yet — move the slider to answer";
      return;
    }
    const anchor = anchorFor(q, value);
    const shown = anchor ? `${formatNumber(value)} (${anchor})` : formatNumber(value);
    input.setAttribute("aria-valuetext", anchor ? `${formatNumber(value)}, ${anchor}` : formatNumber(value));
    valueText.textContent = `Your answer: ${shown}`;
  };
  const answer = () => {
    const changed = !answered;
    answered = true;
    update();
    return changed;
  };
  input.addEventListener("input", () => {
    answer();
    onChange();
  });
  // Clicking the thumb where it already is also counts as choosing that value.
  input.addEventListener("click", () => {
    if (answer()) onChange();
  });
  update();

  append(
    fieldset,
    label,
    h("div", { class: "igym-slider" }, input, anchors),
    anchorDesc,
    valueText,
    error.el,
  );

  return {
    question: q,
    el: fieldset,
    getValue: () => (answered ? clean(Number(input.value)) : null),
    setError: (message) => error.set(message, [fieldset, input], [fieldset, input]),
    focus: () => input.focus(),
  };
}
