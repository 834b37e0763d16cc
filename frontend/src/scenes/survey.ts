/** `survey` scenes: title, intro, questions, continue button. */

import { append, h } from "../dom";
import { renderChoice } from "../questions/choice";
import type { QuestionView } from "../questions/common";
import { renderOptions } from "../questions/options";
import { renderScale } from "../questions/scale";
import { renderText } from "../questions/text";
import type { SceneRenderer } from "../registry";
import type { Answers, Question, SurveySceneView } from "../types";
import { validateQuestion } from "../validation";
import { errorSummary, sceneFooter, sceneHeading, trustedBody } from "./common";

function renderQuestion(q: Question, initial: unknown, onChange: () => void): QuestionView {
  switch (q.kind) {
    case "text":
      return renderText(q, initial, onChange);
    case "choice":
      return renderChoice(q, initial, onChange);
    case "scale":
      return renderScale(q, initial, onChange);
    case "options":
      return renderOptions(q, initial, onChange);
    default: {
      const kind = String((q as { kind?: unknown }).kind);
      console.error(`igym: unsupported question kind "${kind}"`);
      const el = h(
        "div",
        { class: "igym-question igym-question--unknown has-error" },
        h("p", { class: "igym-error" }, `This question uses a type ('${kind}') that this page cannot show.`),
      );
      return {
        question: q,
        el,
        getValue: () => null,
        setError: () => {},
        focus: () => {},
      };
    }
  }
}

export const surveyScene: SceneRenderer = (ctx) => {
  const scene = ctx.scene as SurveySceneView;
  const questions: Question[] = Array.isArray(scene.questions) ? scene.questions : [];
  const draft = ctx.draft ?? {};

  const views: QuestionView[] = [];
  /** Question ids whose error is currently shown (re-validated live as the participant fixes them). */
  const shownErrors = new Set<string>();
  const footer = sceneFooter(scene.button_label);

  const collect = (): Answers => {
    const answers: Answers = {};
    for (const view of views) answers[view.question.id] = view.getValue();
    return answers;
  };

  const onChange = (view: QuestionView) => {
    if (shownErrors.has(view.question.id)) {
      const message = validateQuestion(view.question, view.getValue());
      view.setError(message);
      if (!message) shownErrors.delete(view.question.id);
      if (shownErrors.size === 0) footer.setSummary(null);
    }
    ctx.saveDraft(collect());
  };

  for (const q of questions) {
    let view: QuestionView | null = null;
    view = renderQuestion(q, draft[q.id], () => {
      if (view) onChange(view);
    });
    views.push(view);
  }

  const showErrors = (errors: Record<string, string>, serverMessage: string | null) => {
    shownErrors.clear();
    let first: QuestionView | null = null;
    const known = new Set<string>();
    for (const view of views) {
      const id = view.question.id;
      known.add(id);
      const message = errors[id] ?? null;
      view.setError(message);
      if (message) {
        shownErrors.add(id);
        first ??= view;
      }
    }
    // Errors the server reported for something that is not a question on this page.
    const extra = Object.entries(errors)
      .filter(([id]) => !known.has(id))
      .map(([, message]) => message);
    let summary = errorSummary(shownErrors.size, serverMessage);
    if (extra.length) summary = [summary, ...extra].filter(Boolean).join(" ");
    footer.setSummary(summary || "Your answers could not be accepted. Please check them and try again.");
    first?.focus();
  };

  const form = h("form", { class: "igym-form", novalidate: true });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (footer.busy) return;
    const answers = collect();
    const errors: Record<string, string> = {};
    for (const view of views) {
      const message = validateQuestion(view.question, answers[view.question.id]);
      if (message) errors[view.question.id] = message;
    }
    if (Object.keys(errors).length > 0) {
      showErrors(errors, null);
      return;
    }
    for (const view of views) view.setError(null);
    shownErrors.clear();
    footer.setSummary(null);
    footer.setBusy(true);
    const result = await ctx.submit(answers);
    if (result.ok) return; // the next scene replaces this one
    footer.setBusy(false);
    if (Object.keys(result.errors).length > 0) showErrors(result.errors, result.message || null);
    else footer.setSummary(result.message || "Your answers could not be sent. Please try again.");
  });

  const anyRequired = questions.some((q) => q.required);
  append(
    form,
    h("div", { class: "igym-questions" }, views.map((v) => v.el)),
    footer.el,
  );
  append(
    ctx.root,
    sceneHeading(scene.title),
    trustedBody(scene.intro_html, "igym-intro"),
    anyRequired
      ? h(
          "p",
          { class: "igym-required-note" },
          "Questions marked with ",
          h("span", { class: "igym-required", "aria-hidden": "true" }, "*"),
          h("span", { class: "igym-visually-hidden" }, "an asterisk"),
          " are required.",
        )
      : null,
    form,
  );
};
