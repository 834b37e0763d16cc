/**
 * `options` questions: large selectable option cards (label + description). Each card is a
 * `<label>` wrapping a real radio button or checkbox, so the whole card is clickable and the
 * group works with the keyboard like any radio/checkbox group.
 */

import type { OptionsQuestion } from "../types";
import { renderSelection } from "./choice";
import type { QuestionRenderer } from "./common";

export const renderOptions: QuestionRenderer<OptionsQuestion> = (q, initial, onChange) =>
  renderSelection(
    q,
    (q.options ?? []).map((o) => ({
      value: String(o.value),
      label: String(o.label ?? o.value),
      description: o.description ? String(o.description) : null,
    })),
    initial,
    onChange,
    "cards",
  );
