"""Survey question types: free text, multiple choice, Likert/slider scales and option boxes.

Each question validates an answer the same way the browser does (see ``docs/protocol.md``), so a
participant never sees the server reject what the page accepted, and a hand-crafted message never
gets past the server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs

from igym_core.config.validators import FieldError, non_negative, one_of, slug

__all__ = [
    "Choice",
    "ChoiceQuestion",
    "OptionBox",
    "OptionBoxes",
    "Question",
    "ScaleLabel",
    "ScaleQuestion",
    "TextQuestion",
]


#: What JavaScript's ``String.prototype.trim`` removes (white space and line terminators). Python's
#: ``str.strip()`` also removes U+001C..U+001F and U+0085, so the server strips exactly this set to
#: judge text the way the browser does.
TRIMMED = (
    "\t\n\v\f\r \u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


@attrs.frozen(kw_only=True)
class Question:
    """Base of the question types; select one by ``kind``."""

    kind: ClassVar[str] = "question"
    id: str = attrs.field(validator=slug)
    """Names the answer in ``responses.jsonl`` (``question_id``); unique in the survey; lowercase letters,
    digits, ``_`` and ``-``."""
    prompt: str
    """The question the participant reads."""
    required: bool = True
    """Whether the survey can be submitted without an answer."""

    def validate(self, value: Any) -> str | None:
        """Return a message for the participant if ``value`` is not acceptable, else ``None``."""
        raise NotImplementedError

    def normalize(self, value: Any) -> Any:
        """The value to record for a valid answer (an unanswered question is recorded as null)."""
        return None if value == "" or value == [] else value


@attrs.frozen
class Choice:
    """One answer option: ``value`` is what is recorded, ``label`` what the participant reads."""

    value: str
    """What is recorded when this choice is picked (non-empty, unique in the question)."""
    label: str = ""
    """What the participant reads; the value when empty."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise ValueError(f"a choice's value must be a non-empty string; got {self.value!r}.")
        if not self.label:
            object.__setattr__(self, "label", self.value)


def _to_choices(items: Sequence[Any]) -> tuple[Choice, ...]:
    out = []
    for item in items:
        if isinstance(item, Choice):
            out.append(item)
        elif isinstance(item, str):
            out.append(Choice(item))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Choice(*item))
        else:
            raise ValueError(
                f"each choice must be a string, a (value, label) pair or a Choice; got {item!r}."
            )
    return tuple(out)


def _check_choices(instance: Any, attribute: attrs.Attribute, value: tuple[Choice, ...]) -> None:
    if len(value) < 2:
        raise FieldError(
            attribute.name,
            f"needs at least 2 entries; got {len(value)}. Add choices, or use a TextQuestion instead.",
        )
    seen: set[str] = set()
    for choice in value:
        if choice.value in seen:
            raise FieldError(
                attribute.name,
                f"has the value {choice.value!r} twice; every value must be unique so that answers "
                "can be told apart.",
            )
        seen.add(choice.value)


def _selection_problem(
    value: Any,
    allowed: Sequence[Choice],
    *,
    required: bool,
    multiple: bool,
    min_selected: int | None,
    max_selected: int | None,
) -> str | None:
    values = {c.value for c in allowed}
    if multiple:
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "Expected a list of choices."
        if len(set(value)) != len(value):
            return "A choice was selected twice."
        if any(v not in values for v in value):
            return "Select from the choices shown."
        if not value:
            return "Please select at least one option." if required else None
        if min_selected is not None and len(value) < min_selected:
            return f"Please select at least {min_selected} options."
        if max_selected is not None and len(value) > max_selected:
            return f"Please select at most {max_selected} options."
        return None
    if value is None or value == "":
        return "Please choose an option." if required else None
    if not isinstance(value, str) or value not in values:
        return "Select one of the choices shown."
    return None


def _check_bounds(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 0:
        raise FieldError(attribute.name, f"must be 0 or more; got {value}.")


@attrs.frozen(kw_only=True)
class TextQuestion(Question):
    """Free text, one line or several, with optional length bounds (in characters)."""

    kind: ClassVar[str] = "text"
    min_length: int = attrs.field(default=0, validator=non_negative)
    """The fewest characters accepted (after trimming white space)."""
    max_length: int | None = attrs.field(default=None, validator=_check_bounds)
    """The most characters accepted; None for no limit."""
    multiline: bool = False
    """A text area of several lines instead of a one-line field."""
    placeholder: str = ""
    """Grey hint text shown in the empty field."""

    def __attrs_post_init__(self) -> None:
        if self.max_length is not None and self.max_length < max(self.min_length, 1):
            raise FieldError(
                "max_length",
                f"({self.max_length}) must be at least min_length ({self.min_length}) and at least 1.",
            )

    def validate(self, value: Any) -> str | None:
        if value is None:
            value = ""
        if not isinstance(value, str):
            return "Expected text."
        length = len(value.strip(TRIMMED))
        if length == 0:
            return "Please answer this question." if self.required else None
        if length < self.min_length:
            return f"Please write at least {self.min_length} characters (you wrote {length})."
        if self.max_length is not None and length > self.max_length:
            return f"Please write at most {self.max_length} characters (you wrote {length})."
        return None


@attrs.frozen(kw_only=True)
class _SelectionQuestion(Question):
    multiple: bool = False
    """Allow several choices (checkboxes) instead of one (radio buttons)."""
    min_selected: int | None = attrs.field(default=None, validator=_check_bounds)
    """With ``multiple``: the fewest choices accepted; None for no lower bound beyond ``required``."""
    max_selected: int | None = attrs.field(default=None, validator=_check_bounds)
    """With ``multiple``: the most choices accepted; None for no limit."""

    def _options(self) -> tuple[Choice, ...]:
        raise NotImplementedError

    def __attrs_post_init__(self) -> None:
        if not self.multiple and (self.min_selected is not None or self.max_selected is not None):
            raise FieldError("min_selected", "min_selected and max_selected apply only with multiple=True.")
        lo = self.min_selected or 0
        hi = self.max_selected if self.max_selected is not None else len(self._options())
        if lo > hi or hi > len(self._options()) or (self.max_selected == 0):
            raise FieldError(
                "max_selected",
                f"min_selected={self.min_selected} and max_selected={self.max_selected} cannot be "
                f"satisfied with {len(self._options())} choices; pick bounds between 1 and "
                f"{len(self._options())}.",
            )

    def validate(self, value: Any) -> str | None:
        return _selection_problem(
            value,
            self._options(),
            required=self.required,
            multiple=self.multiple,
            min_selected=self.min_selected,
            max_selected=self.max_selected,
        )


@attrs.frozen(kw_only=True)
class ChoiceQuestion(_SelectionQuestion):
    """Multiple choice: radio buttons, or checkboxes with ``multiple=True``."""

    kind: ClassVar[str] = "choice"
    choices: tuple[Choice, ...] = attrs.field(converter=_to_choices, validator=_check_choices)
    """At least two: each a string (value and label) or a table ``{value, label}`` (in Python, also
    a ``(value, label)`` pair or a ``Choice``)."""

    def _options(self) -> tuple[Choice, ...]:
        return self.choices


@attrs.frozen
class OptionBox:
    """A large selectable card with a label and an optional description."""

    value: str
    """What is recorded when this box is picked (non-empty, unique in the question)."""
    label: str = ""
    """The box's title; the value when empty."""
    description: str = ""
    """Smaller text under the title."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise ValueError(f"an option's value must be a non-empty string; got {self.value!r}.")
        if not self.label:
            object.__setattr__(self, "label", self.value)


def _to_option_boxes(items: Sequence[Any]) -> tuple[OptionBox, ...]:
    out = []
    for item in items:
        if isinstance(item, OptionBox):
            out.append(item)
        elif isinstance(item, Choice):
            out.append(OptionBox(item.value, item.label))
        elif isinstance(item, str):
            out.append(OptionBox(item))
        elif isinstance(item, tuple) and len(item) in (2, 3):
            out.append(OptionBox(*item))
        else:
            raise ValueError(
                "each option must be a string, a (value, label[, description]) tuple or an "
                f"OptionBox; got {item!r}."
            )
    return tuple(out)


@attrs.frozen(kw_only=True)
class OptionBoxes(_SelectionQuestion):
    """Option boxes: large cards to pick one (or several, with ``multiple=True``)."""

    kind: ClassVar[str] = "options"
    options: tuple[OptionBox, ...] = attrs.field(converter=_to_option_boxes, validator=_check_choices)
    """At least two boxes: each a string (value and label) or a table ``{value, label, description}``."""

    def _options(self) -> tuple[Choice, ...]:
        return tuple(Choice(o.value, o.label) for o in self.options)


@attrs.frozen
class ScaleLabel:
    """A label under one point of a scale (usually the two ends and perhaps the middle)."""

    value: float
    """The point of the scale the label stands under."""
    label: str
    """The label's text."""


def _to_scale_labels(items: Any) -> tuple[ScaleLabel, ...]:
    if isinstance(items, dict):
        items = list(items.items())
    out = []
    for item in items:
        if isinstance(item, ScaleLabel):
            out.append(item)
        elif isinstance(item, tuple | list) and len(item) == 2:
            out.append(ScaleLabel(item[0], item[1]))
        else:
            raise ValueError(f"each scale label must be (value, label); got {item!r}.")
    return tuple(out)


@attrs.frozen(kw_only=True)
class ScaleQuestion(Question):
    """A Likert scale (a row of radio buttons) or a slider, from ``min`` to ``max`` by ``step``."""

    kind: ClassVar[str] = "scale"
    min: float = 1
    """The lowest value of the scale."""
    max: float = 7
    """The highest value of the scale."""
    step: float = 1
    """The distance between neighbouring values."""
    style: Literal["likert", "slider"] = attrs.field(default="likert", validator=one_of("likert", "slider"))
    """``likert``: a row of radio buttons, one per value; ``slider``: a slider."""
    labels: tuple[ScaleLabel, ...] = attrs.field(factory=tuple, converter=_to_scale_labels)
    """Labels under points of the scale: ``(value, label)`` pairs (or tables), usually the two ends."""

    def __attrs_post_init__(self) -> None:
        if not self.max > self.min:
            raise FieldError("max", f"({self.max}) must be greater than min ({self.min}).")
        if self.step <= 0:
            raise FieldError("step", f"must be greater than 0; got {self.step}.")
        points = (self.max - self.min) / self.step
        if abs(points - round(points)) > 1e-9:
            raise FieldError(
                "step",
                f"(max - min) / step must be a whole number; got ({self.max} - {self.min}) / "
                f"{self.step} = {points:g}. Adjust max or step.",
            )
        if self.style == "likert" and round(points) + 1 > 15:
            raise FieldError(
                "style",
                f"a Likert scale with {round(points) + 1} points is hard to read; use "
                "style='slider' for more than 15 points.",
            )
        for label in self.labels:
            if self.validate(label.value) is not None:
                raise FieldError(
                    "labels",
                    f"label {label.label!r} is at {label.value}, which is not a point of the scale "
                    f"{self.min}..{self.max} step {self.step}.",
                )

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please choose a point on the scale." if self.required else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "Expected a number."
        if value < self.min - 1e-9 or value > self.max + 1e-9:
            return f"Choose a value between {self.min:g} and {self.max:g}."
        steps = (value - self.min) / self.step
        if abs(steps - round(steps)) > 1e-6:
            return "Choose one of the points of the scale."
        return None


QUESTION_KINDS: tuple[type[Question], ...] = (TextQuestion, ChoiceQuestion, ScaleQuestion, OptionBoxes)
