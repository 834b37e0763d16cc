"""Messages built from other messages read as sentences: no "loaded).. Fix", no "Error: " with
nothing after it, and each says what would work."""

from __future__ import annotations

import re
from typing import Any

import gymnasium
import numpy as np
import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given
from hypothesis import strategies as st

from igym_core.builtin.renderers import ObjectRenderer, RgbArrayRenderer
from igym_core.config.converter import exception_text, problems_from_exception, sentence
from igym_core.rendering.interface import RenderError

# Texts such as messages end in: nothing, a full stop, a closing bracket after one, a colon, spaces
# (their bodies hold no full stops or colons, so any doubled one would be the builders' doing).
endings = st.sampled_from(["", ".", ").", ")", ":", ": ", " ", "?", "...", ".'", "!"])
texts = st.builds(lambda body, end: body + end, st.text(alphabet="abc XYZ019'(),;-_{}", max_size=30), endings)


def _reads_as_a_sentence(message: str) -> None:
    assert not re.search(r"(?<!\.)\.\.(?!\.)", message), message  # ".." but not "..."
    assert not message.rstrip().endswith(":"), message
    assert message == message.rstrip()


@given(texts, st.lists(st.sampled_from(["Fix the value.", "Check the spelling."]), max_size=2))
def test_sentence_ends_once_and_never_on_a_colon(text: str, more: list[str]) -> None:
    joined = sentence(text, *more)
    _reads_as_a_sentence(joined.removesuffix(" ".join(more)).rstrip() if more else joined)
    assert joined.endswith(tuple(".?!)'\"")), joined


@given(texts)
def test_wrong_type_problems_do_not_double_their_punctuation(text: str) -> None:
    for problem in problems_from_exception(ValueError(text), "$.scenes[0].fps", int):
        _reads_as_a_sentence(problem.removesuffix(" Fix the value."))
        assert problem.startswith("$.scenes[0].fps: ")


def test_an_exception_without_message_is_named_not_followed_by_a_colon() -> None:
    assert exception_text(NotImplementedError()) == "NotImplementedError (with no message)"
    assert exception_text(KeyError("x")) == "KeyError: 'x'"
    wrapped = ClassValidationError(
        "x", [ValueError("unknown scene kind 'a'; fix it (see `igym plugins`).")], int
    )
    (problem,) = problems_from_exception(wrapped, "$")
    assert ".." not in problem


class Blank(gymnasium.Env):
    """An env that never says how to draw it (Gymnasium's render raises NotImplementedError)."""

    action_space = gymnasium.spaces.Discrete(2)
    observation_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        return 0, {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return 0, 0.0, False, False, {}


@pytest.mark.parametrize(
    ("renderer", "says"),
    [
        (ObjectRenderer, ["render_fn=", "render objects", "renderer='rgb_array'"]),
        (RgbArrayRenderer, ["render_mode='rgb_array'", "render_fn=", "(height, width, 3) uint8"]),
    ],
)
def test_an_env_that_does_not_draw_itself_is_told_what_to_implement(renderer: Any, says: list[str]) -> None:
    with pytest.raises(RenderError) as info:
        renderer().render(Blank())
    message = str(info.value)
    assert message.startswith("env.render() raised NotImplementedError: this env does not draw itself.")
    for fragment in says:
        assert fragment in message
    _reads_as_a_sentence(message)


def test_the_action_hint_fits_each_kind_of_space() -> None:
    from igym_core.builtin.scene_gym import _action_hint

    box = _action_hint(
        gymnasium.spaces.Box(low=np.array([0.0, -2.0]), high=np.array([1.0, 2.0]), dtype=np.float64)
    )
    assert (
        "array of shape (2,)" in box
        and "'ArrowLeft': [0.0, 0.0]" in box
        and "default_action=[0.0, 0.0]" in box
    )
    assert "Discrete" in box  # or a wrapper that makes the space discrete
    assert "from 1 to 3" in _action_hint(gymnasium.spaces.Discrete(3, start=1))
    assert "list of 2 whole numbers" in _action_hint(gymnasium.spaces.MultiDiscrete([3, 4]))


@pytest.mark.parametrize(
    "space",
    [
        gymnasium.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
        gymnasium.spaces.Box(low=np.array([0.0, -2.0]), high=np.array([1.0, 2.0]), dtype=np.float64),
        gymnasium.spaces.Discrete(3, start=1),
        gymnasium.spaces.MultiDiscrete([3, 4]),
    ],
    ids=str,
)
def test_the_actions_an_action_hint_suggests_are_accepted(space: Any) -> None:
    """The hint's example mapping and default action pass the check that produced the hint."""
    import ast
    import re

    from igym_core.builtin.scene_gym import _action_hint, _contains

    hint = _action_hint(space)
    (default,) = re.findall(r"default_action=(\[[^\]]*\]|-?\d+)", hint)
    assert _contains(space, ast.literal_eval(default)), hint
    for example in re.findall(r"'Arrow\w+': (\[[^\]]*\]|-?\d+)", hint):
        assert _contains(space, ast.literal_eval(example)), hint
