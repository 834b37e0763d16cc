"""The browser and the server judge every answer the same way.

Answers are validated twice: in the page (so a participant sees problems at once) and on the server
(so a hand-made message cannot store an invalid answer). If the two disagreed, a participant could be
stuck on a page whose answers the browser accepts and the server rejects. Hypothesis generates
questions and values; Chromium runs the client's own check, Python the server's.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_core import ChoiceQuestion, OptionBoxes, ScaleQuestion, TextQuestion
from igym_core.builtin.questions import Question
from igym_core.config.converter import make_converter
from igym_core.plugins.manager import create_plugin_manager

CONVERTER = make_converter(create_plugin_manager(autoload=False).registry)

texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", " ", "  a  ", "\t\n", "\u00a0x\u00a0", "😀😀", "e\u0301", "\ufeffab", "\x1c"])


@st.composite
def text_questions(draw: Any) -> TextQuestion:
    min_length = draw(st.integers(0, 4))
    max_length = draw(st.none() | st.integers(max(min_length, 1), 8))
    return TextQuestion(
        id="q", prompt="?", required=draw(st.booleans()), min_length=min_length, max_length=max_length
    )


@st.composite
def selection_questions(draw: Any) -> ChoiceQuestion | OptionBoxes:
    values = ("a", "b", "c", "d")[: draw(st.integers(2, 4))]
    multiple = draw(st.booleans())
    bounds: dict[str, Any] = {}
    if multiple:
        low = draw(st.none() | st.integers(1, len(values)))
        high = draw(st.none() | st.integers(low or 1, len(values)))
        bounds = {"min_selected": low, "max_selected": high}
    cls = draw(st.sampled_from([ChoiceQuestion, OptionBoxes]))
    field = "choices" if cls is ChoiceQuestion else "options"
    return cls(
        id="q", prompt="?", required=draw(st.booleans()), multiple=multiple, **{field: values}, **bounds
    )


@st.composite
def scale_questions(draw: Any) -> ScaleQuestion:
    low = draw(st.sampled_from([0, 1, -3, 0.5]))
    step = draw(st.sampled_from([1, 0.5, 0.1, 5]))
    points = draw(st.integers(1, 12))
    style = "likert" if points < 15 and draw(st.booleans()) else "slider"
    return ScaleQuestion(
        id="q",
        prompt="?",
        required=draw(st.booleans()),
        min=low,
        max=low + step * points,
        step=step,
        style=style,
    )


answers = (
    st.none()
    | texts
    | st.integers(-5, 70)
    | st.floats(-5, 70, allow_nan=False)
    | st.booleans()
    | st.lists(st.sampled_from(["a", "b", "c", "d", "z", ""]), max_size=5)
    | st.sampled_from(["a", "b", "d", "z"])
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.one_of(text_questions(), selection_questions(), scale_questions()), value=answers)
def test_browser_and_server_accept_the_same_answers(client_page: Any, question: Question, value: Any) -> None:
    view = CONVERTER.unstructure(question, unstructure_as=Question)
    browser_problem = client_page.evaluate("([q, v]) => window.igym.validateQuestion(q, v)", [view, value])
    server_problem = question.validate(value)
    assert (browser_problem is None) == (server_problem is None), (
        f"browser says {browser_problem!r}, server says {server_problem!r} for {value!r} and {view}"
    )
