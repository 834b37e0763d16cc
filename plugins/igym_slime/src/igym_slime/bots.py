"""Bots for Slime Volleyball: a scripted baseline (pure Python) and the trained ONNX bot's config.

The scripted bot predicts where the ball will come down on its side (a ballistic flight with wall
bounces), runs to stand a little behind that point so that the ball is knocked towards the net,
and jumps when the ball drops within reach. With nothing to defend it goes back to the middle of
its half. It thinks in the left player's frame and mirrors itself on the right, so one function
plays either side::

    GymScene(..., policies={"right": "igym_slime.bots:scripted_policy"})

The trained bot (``models/slime_policy.onnx``, made by :mod:`igym_slime.train`) is a policy of
igym-onnx's ``onnx`` kind: :func:`trained_policy` gives its config.

Strengths. The trained bot as shipped rarely misses; studies that vary the opponent's skill name a
preset of :data:`SLIME_PRESETS` instead: ``policies={"right": slime_bot("medium")}``. The weaker
presets are the same network choosing less often (``act_every``: it holds its last action in
between, like a slower player) or sampling its actions (``temperature``: more mistakes); one is
the scripted bot. Measured by ``bench/slime_presets.py`` (``igym_slime.arena``: the same 100
seeded games for each preset, sides swapped every game), 2026-12-05 on the 2-core development
machine (results do not depend on its speed):

    ========  ==================================  ===========================  ==========================
    preset    what it is                          vs scripted (W-L-D)          vs random (W-L-D)
    ========  ==================================  ===========================  ==========================
    champion  trained, best action every step     100% (100-0-0; 96–100%)      100% (100-0-0)
    strong    trained, chooses every 2nd step     87% (87-7-6; 79–92%)         100% (100-0-0)
    medium    trained, samples (T=1), every 2nd   70% (70-20-10; 60–78%)       99% (99-1-0)
    scripted  the scripted bot                    43% (43-47-10; 34–53%)       99% (99-1-0)
    weak      trained, chooses every 6th step     5% (5-95-0; 2–11%)           84% (84-16-0; 76–90%)
    ========  ==================================  ===========================  ==========================

(win rate, games won-lost-drawn, and its 95% Wilson interval; a game is five lives each.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igym_slime.env import (
    BALL_RADIUS,
    COURT_HALF_WIDTH,
    DT,
    GRAVITY,
    GROUND_Y,
    JUMP,
    LEFT,
    LEFT_JUMP,
    MAX_BALL_SPEED,
    NOOP,
    RIGHT,
    RIGHT_JUMP,
    SLIME_RADIUS,
    mirror_action,
    mirror_observation,
)

__all__ = [
    "MODEL_PATH",
    "SLIME_PRESETS",
    "ScriptedPolicy",
    "SlimePreset",
    "canonical",
    "predict_landing",
    "scripted_policy",
    "slime_bot",
    "trained_policy",
]

if TYPE_CHECKING:
    from igym_core import Bot

#: The shipped model, made by ``python -m igym_slime.train``.
MODEL_PATH = Path(__file__).resolve().parent / "models" / "slime_policy.onnx"

#: The observation scale the trained model expects (positions and speeds divided by 10).
OBSERVATION_STD = 10.0


def canonical(observation: Sequence[float]) -> tuple[tuple[float, ...], bool]:
    """The observation in the left player's frame, and whether it was mirrored (right player)."""
    values = tuple(float(v) for v in observation)
    if values[0] <= 0:
        return values, False
    return mirror_observation(values), True


def predict_landing(
    bx: float, by: float, bvx: float, bvy: float, height: float, max_steps: int = 90
) -> tuple[float, int]:
    """Where (x) and in how many steps the ball, flying freely, next comes down through ``height``.

    Follows the environment's integration (gravity, the speed cap, wall bounces); ignores the net
    and the slimes. If the ball does not come down within ``max_steps``, the last x is returned.
    """
    wall = COURT_HALF_WIDTH - BALL_RADIUS
    limit2 = MAX_BALL_SPEED * MAX_BALL_SPEED
    for step in range(1, max_steps + 1):
        bvy += GRAVITY * DT
        speed2 = bvx * bvx + bvy * bvy
        if speed2 > limit2:
            scale = MAX_BALL_SPEED / speed2**0.5
            bvx *= scale
            bvy *= scale
        bx += bvx * DT
        by += bvy * DT
        if bx < -wall:
            bx, bvx = -wall, -bvx
        elif bx > wall:
            bx, bvx = wall, -bvx
        if by <= height and bvy < 0:
            return bx, step
    return bx, max_steps


class ScriptedPolicy:
    """The scripted baseline. Parameters (court units) set its style:

    Args:
        offset: how far behind the predicted landing point it stands (towards its own wall), so that
            the ball bounces forward.
        home: where it waits while the ball is on the other side (distance from the net).
        jump_reach: it jumps when the ball is this close horizontally ...
        jump_height: ... and this low above the ground, and falling.
        deadband: it stands still when this close to where it wants to be.
    """

    def __init__(
        self,
        *,
        offset: float = 0.7,
        home: float = 9.0,
        jump_reach: float = 2.0,
        jump_height: float = 6.0,
        deadband: float = 0.35,
    ) -> None:
        self.offset = offset
        self.home = home
        self.jump_reach = jump_reach
        self.jump_height = jump_height
        self.deadband = deadband

    def __repr__(self) -> str:
        return f"ScriptedPolicy(offset={self.offset}, home={self.home})"

    def act(self, observation: Sequence[float]) -> int:
        obs, mirrored = canonical(observation)
        action = self._act_left(obs)
        return mirror_action(action) if mirrored else action

    __call__ = act

    def _act_left(self, obs: tuple[float, ...]) -> int:
        x, y = obs[0], obs[1]
        bx, by, bvx, bvy = obs[4], obs[5], obs[6], obs[7]
        contact = GROUND_Y + SLIME_RADIUS * 0.8
        landing, _steps = predict_landing(bx, by, bvx, bvy, contact)
        # Coming down on our side: stand behind it; otherwise wait in the middle of our half.
        target = landing - self.offset if landing < 0 else -self.home
        jump = (
            abs(bx - x) < self.jump_reach
            and by - GROUND_Y < self.jump_height
            and bvy < 0
            and y <= GROUND_Y + 1e-6
            and bx < 0
        )
        move = 0
        if target > x + self.deadband:
            move = 1
        elif target < x - self.deadband:
            move = -1
        if jump:
            return (LEFT_JUMP, JUMP, RIGHT_JUMP)[move + 1]
        return (LEFT, NOOP, RIGHT)[move + 1]


_DEFAULT = ScriptedPolicy()


def scripted_policy(observation: Sequence[float]) -> int:
    """The scripted baseline with its default settings, as a function ``observation -> action``."""
    return _DEFAULT.act(observation)


def trained_policy(path: str | Path | None = None, **options: Any) -> Any:
    """The config of the trained bot (igym-onnx's :class:`~igym_onnx.OnnxPolicy`).

    ``path`` defaults to the shipped model (absolute); examples name it relative to their own file.
    ``options`` are further ``OnnxPolicy`` fields, e.g. ``action="sample", temperature=0.5``.
    """
    from igym_onnx import OnnxPolicy, Preprocess

    return OnnxPolicy(
        path=str(path if path is not None else MODEL_PATH),
        preprocess=Preprocess(std=OBSERVATION_STD),
        **options,
    )


# A plain dataclass, and igym_core imported only when a bot is made: the browser runtimes import this
# module (the scripted bot) where only a small part of igym_core is shipped.
@dataclass(frozen=True, kw_only=True)
class SlimePreset:
    """A named strength: the trained network's settings (or the scripted bot) and what they mean."""

    description: str
    scripted: bool = False
    """The scripted baseline instead of the trained network."""
    act_every: int = 1
    """The bot chooses every ``act_every`` steps (30 steps a second) and holds its action in between."""
    temperature: float | None = None
    """None: the network's best action (argmax); a number: actions sampled from
    ``softmax(logits / temperature)`` with the seat's seeded stream."""

    def bot(self, path: str | Path | None = None) -> Bot:
        """The seat's bot (``path``: the model, default the shipped one)."""
        from igym_core import Bot

        if self.scripted:
            return Bot(policy="igym_slime.bots:scripted_policy")
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options = {"action": "sample", "temperature": self.temperature}
        return Bot(policy=trained_policy(path, **options), act_every=self.act_every, between="repeat")


#: The named strengths, strongest first (win rates against the scripted bot fall in this order,
#: the scripted bot's own being about even). Every one beats random play.
SLIME_PRESETS: dict[str, SlimePreset] = {
    "champion": SlimePreset(description="the trained bot as shipped: its best action at every step"),
    "strong": SlimePreset(
        description="the trained bot choosing every 2nd step (15 times a second)", act_every=2
    ),
    "medium": SlimePreset(
        description="the trained bot sampling its actions (temperature 1), choosing every 2nd step",
        act_every=2,
        temperature=1.0,
    ),
    "scripted": SlimePreset(description="the scripted baseline (ScriptedPolicy)", scripted=True),
    "weak": SlimePreset(
        description="the trained bot choosing every 6th step (5 times a second)", act_every=6
    ),
}


def slime_bot(name: str, path: str | Path | None = None) -> Bot:
    """The bot of the preset ``name`` (see :data:`SLIME_PRESETS`), for a seat:
    ``policies={"right": slime_bot("medium")}``. ``path``: the model, e.g. relative to the
    experiment file (default: the shipped model)."""
    preset = SLIME_PRESETS.get(name)
    if preset is None:
        from igym_core.errors import ConfigError

        raise ConfigError(
            f"slime_bot needs one of the presets {', '.join(SLIME_PRESETS)}; got {name!r}. "
            'Example: policies={"right": slime_bot("medium")}.'
        )
    return preset.bot(path)
