"""Built-in scene types: consent, static pages, surveys and the end of the study."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
from cattrs.errors import ForbiddenExtraKeysError
from markdown_it import MarkdownIt

from igym_core.builtin.questions import (
    QUESTION_KINDS,
    Choice,
    OptionBox,
    Question,
    ScaleLabel,
)
from igym_core.config.converter import register_tagged_union
from igym_core.config.urls import UrlTemplate, check_url_template, fill_url_template
from igym_core.config.validators import FieldError, non_negative, one_of
from igym_core.config.value_text import check_value_text, fill_value_text
from igym_core.plugins.markers import hookimpl
from igym_core.scenes.interface import SceneConfig, SceneContext

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["EndScene", "StartScene", "StaticScene", "SurveyScene"]


@hookimpl(trylast=True)
def igym_register_scene_types() -> list[type[SceneConfig]]:
    return [StartScene, StaticScene, SurveyScene, EndScene]


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def _body_html(text: str, fmt: str) -> str:
    return text if fmt == "html" else _markdown().render(text)


@attrs.frozen(kw_only=True)
class _BodyScene(SceneConfig):
    """A scene whose page text is Markdown or HTML, given inline or in a file."""

    body: str = ""
    """The page text, Markdown by default (``body_format="html"`` for HTML)."""
    body_file: str | None = None
    """A file to read the body from instead, relative to the experiment file's directory."""
    body_format: Literal["markdown", "html"] = attrs.field(
        default="markdown", validator=one_of("markdown", "html")
    )
    """How ``body`` (or ``body_file``) is written: ``markdown`` or ``html``; a ``body_file`` ending in
    ``.html`` is HTML in any case."""

    def __attrs_post_init__(self) -> None:
        # A class's default body (EndScene has one) gives way to a body_file.
        default = attrs.fields(type(self)).body.default
        if self.body and self.body != default and self.body_file:
            raise FieldError("body_file", "give either body or body_file, not both.")

    def body_source(self, base_dir: Path) -> str:
        if self.body_file is None:
            return self.body
        path = (base_dir / self.body_file).resolve()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"body_file {self.body_file!r} could not be read ({exc.strerror}: {path}). Paths are "
                "relative to the directory of the experiment file."
            ) from exc

    def rendered_body(self, base_dir: Path) -> str:
        fmt = self.body_format
        if self.body_file is not None and self.body_file.endswith((".html", ".htm")):
            fmt = "html"
        return _body_html(self.body_source(base_dir), fmt)


@attrs.frozen(kw_only=True)
class StartScene(_BodyScene):
    """Consent: the study's information, and an agreement the participant must tick to continue."""

    kind: ClassVar[str] = "start"
    title: str = "Consent"
    """The page's heading."""
    agree_label: str = "I have read the information above and agree to take part."
    """The text next to the box the participant must tick to continue."""
    button_label: str = "Continue"
    """The text of the continue button."""

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "title": self.title,
            "body_html": self.rendered_body(base_dir),
            "agree_label": self.agree_label,
            "button_label": self.button_label,
        }

    def answer_ids(self) -> frozenset[str]:
        return frozenset({"agree"})

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        if answers.get("agree") is not True:
            return {"agree": "You need to agree before you can continue."}
        extra = set(answers) - {"agree"}
        return {key: "Unexpected answer." for key in extra}


@attrs.frozen(kw_only=True)
class StaticScene(_BodyScene):
    """A page of text (instructions, debriefing) with a continue button."""

    kind: ClassVar[str] = "static"
    title: str = ""
    """The page's heading (none when empty)."""
    button_label: str = "Continue"
    """The text of the continue button."""
    min_duration_ms: int = attrs.field(default=0, validator=non_negative)
    """The continue button stays disabled this long, so instructions are not skipped unread; the
    server refuses a submit that comes sooner (``too_early``)."""

    def min_time_on_page_ms(self) -> int:
        return self.min_duration_ms

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "title": self.title,
            "body_html": self.rendered_body(base_dir),
            "button_label": self.button_label,
            "min_duration_ms": self.min_duration_ms,
        }


def _check_questions(instance: Any, attribute: attrs.Attribute, value: tuple[Question, ...]) -> None:
    if not value:
        raise FieldError("questions", "a survey needs at least one question.")
    seen: set[str] = set()
    for index, question in enumerate(value):
        if not isinstance(question, Question):
            raise FieldError(
                f"questions[{index}]",
                f"is {question!r}; expected a question such as TextQuestion, "
                "ChoiceQuestion, ScaleQuestion or OptionBoxes.",
            )
        if question.id in seen:
            raise FieldError(f"questions[{index}].id", f"repeats the id {question.id!r}; ids must be unique.")
        seen.add(question.id)


@attrs.frozen(kw_only=True)
class SurveyScene(SceneConfig):
    """A page of questions. Answers are checked in the browser and again on the server."""

    kind: ClassVar[str] = "survey"
    title: str = ""
    """The page's heading (none when empty)."""
    intro: str = ""
    """Markdown shown above the questions."""
    questions: tuple[Question, ...] = attrs.field(converter=tuple, validator=_check_questions)
    """The questions, in order (at least one; ids unique): tables with ``kind`` ``text``, ``choice``,
    ``scale`` or ``options``."""
    button_label: str = "Continue"
    """The text of the submit button."""

    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        kinds = {q.kind: q for q in QUESTION_KINDS}
        register_tagged_union(converter, Question, lambda: kinds, "question")

        def from_str_or_dict(value: Any, target: type) -> Any:
            if isinstance(value, str):
                return target(value)
            _forbid_extra_keys(value, target)
            return converter.structure_attrs_fromdict(value, target)

        converter.register_structure_hook(Choice, from_str_or_dict)
        converter.register_structure_hook(OptionBox, from_str_or_dict)

        def pair_or_dict(value: Any, target: type) -> Any:
            if isinstance(value, list | tuple):
                return target(*value)
            _forbid_extra_keys(value, target)
            return converter.structure_attrs_fromdict(value, target)

        converter.register_structure_hook(ScaleLabel, pair_or_dict)

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "title": self.title,
            "intro_html": _body_html(self.intro, "markdown") if self.intro else "",
            "button_label": self.button_label,
            "questions": [converter.unstructure(q, unstructure_as=Question) for q in self.questions],
        }

    def answer_ids(self) -> frozenset[str]:
        return frozenset(q.id for q in self.questions)

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        ids = {q.id for q in self.questions}
        for key in answers:
            if key not in ids:
                errors[str(key)] = "This survey has no such question."
        for question in self.questions:
            problem = question.validate(answers.get(question.id))
            if problem is not None:
                errors[question.id] = problem
        return errors

    def response_rows(self, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"question_id": q.id, "value": q.normalize(answers.get(q.id))} for q in self.questions]


def _forbid_extra_keys(value: Any, target: type) -> None:
    """A choice/option/label table with a key its class lacks (``lable``) is an error, as everywhere
    else in an experiment file (``structure_attrs_fromdict`` would silently drop it)."""
    if isinstance(value, Mapping):
        extra = set(value) - {field.name for field in attrs.fields(target)}
        if extra:
            raise ForbiddenExtraKeysError(f"Extra fields in constructor for {target.__name__}", target, extra)


_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by hand


def _check_redirect(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        check_url_template("redirect_url", value)


def _check_code(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value.strip():
        raise FieldError("completion_code", "must not be blank; use None for no code or 'auto'.")


def _check_values_text(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise FieldError(attribute.name, f"expected a text or None; got {value!r}.")
    check_value_text(attribute.name, value)


def _check_outcome_codes(instance: Any, attribute: attrs.Attribute, value: Mapping[str, str | None]) -> None:
    for outcome, code in value.items():
        if code is not None and not (isinstance(code, str) and code.strip()):
            raise FieldError(
                f"codes_by_outcome.{outcome}",
                f"is {code!r}; expected a code, 'auto', or None for no code.",
            )


@attrs.frozen(kw_only=True)
class EndScene(_BodyScene):
    """The last page: a message, a completion code, and optionally a redirect back to the platform.

    ``completion_code`` is ``None`` (no code), a fixed string (Prolific's study code), or ``"auto"``
    for a fresh code per participant (8 characters, recorded). ``redirect_url`` may contain
    ``{completion_code}`` (when there is a code), ``{participant_id}`` and the URL parameters the
    experiment declares in ``url_params`` (``{PROLIFIC_PID}``); each is URL-encoded, and any other
    placeholder fails ``igym check``. The browser redirects only after the server has
    confirmed that all of the participant's data is stored.

    The participant's outcome (how they got here: ``completed``, ``game_abandoned`` after a game
    scene with ``on_abandon="continue"``, ``waiting_timeout`` after a waiting room's ``continue``
    or ``goto``, ``runtime_load_failed`` when a browser-run game could not load) is recorded with
    ``finished`` and sent to the page in the scene's context. ``codes_by_outcome`` gives an outcome
    its own code instead of ``completion_code`` (``None``: no code), e.g. Prolific's separate code
    for partial completion.
    """

    kind: ClassVar[str] = "end"
    terminal: ClassVar[bool] = True
    title: str = "Thank you"
    """The page's heading."""
    body: str = "You have completed the study. Thank you for taking part."
    completion_code: str | None = attrs.field(default=None, validator=_check_code)
    """None: no code; a fixed code (what Prolific's study expects); ``"auto"``: a fresh 8-character code per
    participant, recorded (for platforms that accept any code, or your own checks)."""
    redirect_url: str | None = attrs.field(default=None, validator=_check_redirect)
    """Where the browser goes once the participant's data is stored; may use ``{completion_code}``,
    ``{participant_id}`` and the study link's parameters (``{PROLIFIC_PID}``), each URL-encoded. None:
    stay on the page."""
    redirect_delay_ms: int = attrs.field(default=3000, validator=non_negative)
    """How long the page is shown before the redirect."""
    codes_by_outcome: Mapping[str, str | None] = attrs.field(factory=dict, validator=_check_outcome_codes)
    """A code per outcome (``completed``, ``game_abandoned``, ``waiting_timeout``,
    ``runtime_load_failed``) instead of ``completion_code``; ``None``: no code for that outcome."""
    values_text: str | None = attrs.field(default=None, validator=_check_values_text)
    """A line under the body with the participant's values filled in: ``"Your bonus: £{maze_bonus:.2f}"``
    (``{name}`` or ``{name:.2f}``; ``{{``/``}}`` for braces). Each name must be a value a scene of
    the experiment declares (a ``UnityScene`` with ``score_episode``: ``<scene_id>_score``,
    ``<scene_id>_bonus``), checked by ``igym check``; a participant who never got it sees the
    declaring scene's default (0 for a score). Shown as plain text. None: no such line."""

    def value_texts(self) -> dict[str, str]:
        return {"values_text": self.values_text} if self.values_text is not None else {}

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "title": self.title,
            "body_html": self.rendered_body(base_dir),
            "redirect_delay_ms": self.redirect_delay_ms,
        }

    def url_templates(self) -> dict[str, UrlTemplate]:
        if self.redirect_url is None:
            return {}
        has_code = ("completion_code",) if self.completion_code is not None else ()
        return {"redirect_url": UrlTemplate(self.redirect_url, scene_placeholders=has_code)}

    def new_values(self, ctx: SceneContext) -> dict[str, Any]:
        """Values drawn once per participant on arrival and recorded (the completion code)."""
        setting = self.codes_by_outcome.get(ctx.outcome, self.completion_code)
        if setting is None:
            return {}
        if setting != "auto":
            return {"completion_code": setting}
        # From the OS's random source, not the experiment seed: a code must not be guessable.
        return {"completion_code": "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))}

    def client_context(self, ctx: SceneContext) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": ctx.outcome}
        if self.values_text is not None:
            out["values_text"] = fill_value_text(self.values_text, ctx.values, ctx.value_defaults)
        reasons = ctx.values.get("exit_reasons")
        if ctx.outcome == "screened_out" and reasons:  # why, in plain words (an entry screening's)
            out["exit_reasons"] = [str(reason) for reason in reasons]
        code = ctx.values.get("completion_code")
        if code is not None:
            out["completion_code"] = code
        if self.redirect_url is not None:
            out["redirect_url"] = self.build_redirect(ctx)
        return out

    def build_redirect(self, ctx: SceneContext) -> str:
        if self.redirect_url is None:
            return ""
        values: dict[str, str] = {k: str(v) for k, v in ctx.params.items()}
        values["participant_id"] = ctx.participant_id
        if "completion_code" in ctx.values:
            values["completion_code"] = str(ctx.values["completion_code"])
        return fill_url_template(self.redirect_url, values)
