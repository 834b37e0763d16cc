/**
 * Client-side validation of survey answers, mirroring the server's rules (docs/protocol.md,
 * "Questions"). The server validates again; this only saves a round trip and gives instant
 * feedback. Every function returns an error message for the participant, or null when valid.
 */

import type {
  Answers,
  ChoiceQuestion,
  OptionsQuestion,
  Question,
  ScaleQuestion,
  TextQuestion,
} from "./types";

/** Length in Unicode code points of the text with surrounding whitespace stripped. */
export function textLength(value: string): number {
  return [...value.trim()].length;
}

export function validateText(q: TextQuestion, value: unknown): string | null {
  if (value === null || value === undefined) value = "";
  if (typeof value !== "string") return "Expected text.";
  const length = textLength(value);
  if (length === 0) {
    // An optional question may be left empty even when it has a min_length.
    return q.required ? "Please answer this question." : null;
  }
  const min = typeof q.min_length === "number" ? q.min_length : 0;
  if (length < min) return `Please write at least ${min} characters (you wrote ${length}).`;
  if (typeof q.max_length === "number" && length > q.max_length) {
    return `Please write at most ${q.max_length} characters (you wrote ${length}).`;
  }
  return null;
}

/** Shared by `choice` and `options`: values among the allowed ones, no duplicates, counts in bounds. */
function validateSelection(
  q: ChoiceQuestion | OptionsQuestion,
  allowed: readonly string[],
  value: unknown,
): string | null {
  const allowedSet = new Set(allowed);
  if (q.multiple) {
    if (value === null || value === undefined) value = [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) return "Expected a list of choices.";
    if (new Set(value).size !== value.length) return "A choice was selected twice.";
    if (value.some((v) => !allowedSet.has(v))) return "Select from the choices shown.";
    if (value.length === 0) return q.required ? "Please select at least one option." : null;
    const min = q.min_selected ?? null;
    const max = q.max_selected ?? null;
    if (min !== null && value.length < min) return `Please select at least ${min} options.`;
    if (max !== null && value.length > max) return `Please select at most ${max} options.`;
    return null;
  }
  if (value === null || value === undefined || value === "") {
    return q.required ? "Please choose an option." : null;
  }
  if (typeof value !== "string" || !allowedSet.has(value)) return "Select one of the choices shown.";
  return null;
}

export function validateChoice(q: ChoiceQuestion, value: unknown): string | null {
  return validateSelection(
    q,
    (q.choices ?? []).map((c) => c.value),
    value,
  );
}

export function validateOptions(q: OptionsQuestion, value: unknown): string | null {
  return validateSelection(
    q,
    (q.options ?? []).map((o) => o.value),
    value,
  );
}

/** Python's `f"{x:g}"` for the numbers a scale uses. */
function g(x: number): string {
  return String(Number(x.toPrecision(6)));
}

/** Is `value` one of the scale's points (`min <= value <= max`, on a step from `min`)? */
export function onScale(q: ScaleQuestion, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  const eps = 1e-9;
  if (value < q.min - eps || value > q.max + eps) return false;
  if (!q.step || q.step <= 0) return true;
  const steps = (value - q.min) / q.step;
  return Math.abs(steps - Math.round(steps)) < 1e-6;
}

export function validateScale(q: ScaleQuestion, value: unknown): string | null {
  if (value === null || value === undefined) {
    return q.required ? "Please choose a point on the scale." : null;
  }
  if (typeof value !== "number" || !Number.isFinite(value)) return "Expected a number.";
  const eps = 1e-9;
  if (value < q.min - eps || value > q.max + eps) return `Choose a value between ${g(q.min)} and ${g(q.max)}.`;
  if (!onScale(q, value)) return "Choose one of the points of the scale.";
  return null;
}

export function validateQuestion(q: Question, value: unknown): string | null {
  switch (q.kind) {
    case "text":
      return validateText(q, value);
    case "choice":
      return validateChoice(q, value);
    case "scale":
      return validateScale(q, value);
    case "options":
      return validateOptions(q, value);
    default:
      return null;
  }
}

/** Errors by question id (empty when everything is valid). */
export function validateAnswers(questions: readonly Question[], answers: Answers): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const q of questions) {
    const message = validateQuestion(q, answers[q.id]);
    if (message) errors[q.id] = message;
  }
  return errors;
}
