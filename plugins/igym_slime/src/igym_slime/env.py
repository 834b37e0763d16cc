"""Slime Volleyball as a PettingZoo-style parallel environment, in pure Python.

Two semicircular slimes, ``"left"`` and ``"right"``, on either side of a net; a ball under gravity
that bounces off the slimes (a collision with the circle: the relative velocity is reflected about
the line between the centres, as in Otoro's classic game), the walls, the ceiling and the net. A
point is lost when the ball lands on one's own side; each player has ``lives`` lives, and the
episode ends when one has none left (``terminated``) or after ``max_steps`` steps (``truncated``).
Every point gives the winner +1 and the loser -1.

The core imports nothing beyond the standard library (no numpy), so the same code runs on the
server and in the browser under Pyodide. Only :meth:`SlimeVolleyEnv.action_space` and
:meth:`SlimeVolleyEnv.observation_space` import Gymnasium (lazily), because the environment
contract wants Gymnasium spaces.

Units: the court is ``COURT_WIDTH`` (48) units wide, x from -24 (left wall) to +24 (right wall),
the net at x = 0; y points up from the bottom of the picture, the ground at ``GROUND_Y``. One step
is ``DT`` = 1/30 s: serve the game at 30 fps.

**Actions** (``Discrete(6)``, the same for both players, in *screen* directions so that one key
mapping serves both seats of a two-person game): 0 nothing, 1 left, 2 right, 3 jump, 4 left+jump,
5 right+jump.

**Observations** (12 floats, a tuple): the player's own ``x, y, vx, vy``, then the ball's, then the
opponent's, in court coordinates. Because actions are in screen directions, the observations are
too; :func:`mirror_observation` and :func:`mirror_action` turn the right player's view and choice
into the left player's, so one policy can play either side (the scripted bot, the numpy training
wrapper and the shipped ONNX model all do exactly that).

**Determinism**: the only randomness is the serve (the ball starts at the centre with a random
velocity that sends it to either side), drawn from a SplitMix64 generator seeded by
``reset(seed=...)``. :meth:`~SlimeVolleyEnv.get_state` returns a JSON-able dict of the full state
(the generator's included), :meth:`~SlimeVolleyEnv.set_state` restores it exactly and
:meth:`~SlimeVolleyEnv.state_hash` is the SHA-256 of its canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "AGENTS",
    "BALL_RADIUS",
    "COURT_HALF_WIDTH",
    "COURT_HEIGHT",
    "COURT_WIDTH",
    "DT",
    "GROUND_Y",
    "NET_HEIGHT",
    "NET_WIDTH",
    "OBSERVATION_SIZE",
    "SLIME_RADIUS",
    "SlimeVolleyEnv",
    "make_env",
    "mirror_action",
    "mirror_observation",
]

# --- the court and its physics (court units, seconds) ------------------------------------------
COURT_WIDTH = 48.0
COURT_HALF_WIDTH = COURT_WIDTH / 2
COURT_HEIGHT = 48.0
GROUND_Y = 1.5
NET_WIDTH = 1.0
NET_HEIGHT = 3.5
SLIME_RADIUS = 1.5
BALL_RADIUS = 0.5
SLIME_SPEED = 17.5
JUMP_SPEED = 13.5
GRAVITY = -29.4
MAX_BALL_SPEED = 22.5
DT = 1.0 / 30.0
#: How far a ball is pushed per iteration when it overlaps a slime (and past a wall it touched).
NUDGE = 0.1
#: Steps the ball hangs at the centre before each serve (one second at 30 fps).
SERVE_DELAY_STEPS = 30
SERVE_HEIGHT = COURT_WIDTH / 4
SERVE_SPEED_X = (-20.0, 20.0)
SERVE_SPEED_Y = (10.0, 25.0)
START_X = COURT_WIDTH / 4

# --- players, actions, observations ---------------------------------------------------------------
AGENTS = ("left", "right")
NOOP, LEFT, RIGHT, JUMP, LEFT_JUMP, RIGHT_JUMP = range(6)
ACTIONS = (NOOP, LEFT, RIGHT, JUMP, LEFT_JUMP, RIGHT_JUMP)
ACTION_NAMES = ("noop", "left", "right", "jump", "left+jump", "right+jump")
#: action -> (horizontal direction on screen, jump)
_ACTION_EFFECT = ((0, False), (-1, False), (1, False), (0, True), (-1, True), (1, True))
_MIRRORED_ACTION = (NOOP, RIGHT, LEFT, JUMP, RIGHT_JUMP, LEFT_JUMP)
OBSERVATION_SIZE = 12
#: Indices of the observation's x positions and x velocities (negated by a mirror).
X_INDICES = (0, 2, 4, 6, 8, 10)
#: Bounds of the observation space: positions lie in the court; velocities are capped at
#: ``MAX_BALL_SPEED`` after each step, but a bounce in the step's last phase can add a slime's speed.
VELOCITY_BOUND = 100.0

_MASK64 = (1 << 64) - 1
_STATE_VERSION = 1


def mirror_observation(observation: Any) -> tuple[float, ...]:
    """The observation as the other side of the court sees it (x positions and x velocities negated).

    Mirroring the right player's observation gives what the left player would see in its place.
    """
    out = [float(v) for v in observation]
    for i in X_INDICES:
        out[i] = -out[i]
    return tuple(out)


def mirror_action(action: int) -> int:
    """The action with left and right swapped (``1 <-> 2``, ``4 <-> 5``)."""
    return _MIRRORED_ACTION[int(action)]


def _splitmix64(state: int) -> tuple[int, int]:
    """SplitMix64: (next state, 64 random bits). Tiny, portable state; the same bits everywhere."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


class SlimeVolleyEnv:
    """Slime Volleyball for two players, ``"left"`` and ``"right"`` (PettingZoo's parallel API).

    Args:
        lives: points a player may lose before the episode ends (the other player wins).
        max_steps: the episode is truncated after this many steps (3000: 100 s at 30 fps).
    """

    metadata = {"name": "slime_volley_v1", "render_fps": 30, "render_modes": ["objects"]}

    def __init__(self, *, lives: int = 5, max_steps: int = 3000) -> None:
        if isinstance(lives, bool) or not isinstance(lives, int) or lives < 1:
            raise ValueError(f"lives must be an integer of at least 1; got {lives!r}.")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an integer of at least 1; got {max_steps!r}.")
        self.lives_per_episode = lives
        self.max_steps = max_steps
        self.possible_agents: list[str] = list(AGENTS)
        self.agents: list[str] = []
        self.render_mode = "objects"
        self._action_space: Any = None
        self._observation_space: Any = None
        self._rng: int | None = None
        # The state proper (kept as plain attributes: this runs in training loops and on a server tick).
        self.steps = 0
        self.lives = [lives, lives]
        self.ball = [0.0, SERVE_HEIGHT, 0.0, 0.0]
        self.slimes = [[-START_X, GROUND_Y, 0.0, 0.0], [START_X, GROUND_Y, 0.0, 0.0]]
        self.serve_delay = SERVE_DELAY_STEPS
        self.last_point: str | None = None
        self.points = 0

    # --- the parallel API ------------------------------------------------------------------------
    def action_space(self, agent: str) -> Any:
        self._check_agent(agent)
        if self._action_space is None:
            from igym_slime.spaces import action_space

            self._action_space = action_space()
        return self._action_space

    def observation_space(self, agent: str) -> Any:
        self._check_agent(agent)
        if self._observation_space is None:
            from igym_slime.spaces import observation_space

            self._observation_space = observation_space()
        return self._observation_space

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, tuple[float, ...]], dict[str, dict[str, Any]]]:
        """Start an episode: full lives, slimes at their starting places, the ball about to be served.

        ``seed`` seeds the serves; without one, the serves continue the current random stream
        (a fresh, unpredictable one on the first reset).
        """
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seed must be an integer or None; got {seed!r}.")
            self._rng = seed & _MASK64
        elif self._rng is None:
            self._rng = int.from_bytes(os.urandom(8), "big")
        self.agents = list(AGENTS)
        self.steps = 0
        self.points = 0
        self.last_point = None
        self.lives = [self.lives_per_episode, self.lives_per_episode]
        self.slimes = [[-START_X, GROUND_Y, 0.0, 0.0], [START_X, GROUND_Y, 0.0, 0.0]]
        self._serve()
        return self._observations(), self._infos()

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, tuple[float, ...]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Advance one step (``DT`` seconds). A player missing from ``actions`` does nothing."""
        if not self.agents:
            raise RuntimeError("step() called after the episode ended (or before reset()); call reset().")
        for index, agent in enumerate(AGENTS):
            self._move_slime(self.slimes[index], index, self._action_of(actions, agent))
        lost_by = self._move_ball()
        self.steps += 1
        rewards = {"left": 0.0, "right": 0.0}
        if lost_by is not None:
            winner = AGENTS[1 - lost_by]
            rewards[winner] = 1.0
            rewards[AGENTS[lost_by]] = -1.0
            self.lives[lost_by] -= 1
            self.points += 1
            self.last_point = winner
            self._serve()
        terminated = min(self.lives) <= 0
        truncated = not terminated and self.steps >= self.max_steps
        observations = self._observations()
        infos = self._infos()
        self.agents = [] if terminated or truncated else list(AGENTS)
        return (
            observations,
            rewards,
            {"left": terminated, "right": terminated},
            {"left": truncated, "right": truncated},
            infos,
        )

    def render(self) -> list[Any]:
        """Render objects for igym's object renderer (see :func:`igym_slime.render.draw`)."""
        from igym_slime.render import draw

        return draw(self)

    def close(self) -> None:
        """Nothing to release."""

    # --- rollback: the full state ----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The full state as a JSON-able dict (a copy): positions, velocities, lives, counters, the
        live agents and the random generator."""
        return {
            "version": _STATE_VERSION,
            "lives_per_episode": self.lives_per_episode,
            "max_steps": self.max_steps,
            "agents": list(self.agents),
            "steps": self.steps,
            "points": self.points,
            "lives": list(self.lives),
            "ball": list(self.ball),
            "slimes": [list(s) for s in self.slimes],
            "serve_delay": self.serve_delay,
            "last_point": self.last_point,
            "rng": self._rng,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state :meth:`get_state` returned (also after a JSON round trip)."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"expected a state from SlimeVolleyEnv.get_state() (version {_STATE_VERSION}); got "
                f"{str(state)[:80]!r}."
            )
        self.lives_per_episode = int(state["lives_per_episode"])
        self.max_steps = int(state["max_steps"])
        self.agents = [str(a) for a in state["agents"]]
        self.steps = int(state["steps"])
        self.points = int(state["points"])
        self.lives = [int(v) for v in state["lives"]]
        self.ball = [float(v) for v in state["ball"]]
        self.slimes = [[float(v) for v in s] for s in state["slimes"]]
        self.serve_delay = int(state["serve_delay"])
        self.last_point = state["last_point"]
        self._rng = None if state["rng"] is None else int(state["rng"])

    def state_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`get_state`: equal exactly for equal states."""
        text = json.dumps(self.get_state(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # --- physics -------------------------------------------------------------------------------
    @staticmethod
    def _action_of(actions: Mapping[str, Any], agent: str) -> int:
        action = actions.get(agent, NOOP)
        try:
            value = int(action)
        except (TypeError, ValueError):
            value = -1
        if value != action or not 0 <= value < 6:
            raise ValueError(
                f"the action of {agent!r} must be an integer 0..5 (0 nothing, 1 left, 2 right, 3 jump, "
                f"4 left+jump, 5 right+jump); got {action!r}."
            )
        return value

    @staticmethod
    def _move_slime(slime: list[float], index: int, action: int) -> None:
        direction, jump = _ACTION_EFFECT[action]
        x, y, _vx, vy = slime
        vy += GRAVITY * DT
        if y <= GROUND_Y + NUDGE * DT:  # on the ground: it may jump
            vy = JUMP_SPEED if jump else 0.0
        vx = direction * SLIME_SPEED
        x += vx * DT
        y += vy * DT
        if y <= GROUND_Y:
            y, vy = GROUND_Y, 0.0
        # Each slime stays in its own half: between its wall and the net.
        inner = NET_WIDTH / 2 + SLIME_RADIUS
        outer = COURT_HALF_WIDTH - SLIME_RADIUS
        if index == 0:
            if x >= -inner:
                x, vx = -inner, 0.0
            elif x <= -outer:
                x, vx = -outer, 0.0
        else:
            if x <= inner:
                x, vx = inner, 0.0
            elif x >= outer:
                x, vx = outer, 0.0
        slime[0], slime[1], slime[2], slime[3] = x, y, vx, vy

    def _move_ball(self) -> int | None:
        """Move the ball one step; the index of the player who lost a point, if the ball landed."""
        ball = self.ball
        x, y, vx, vy = ball
        previous_x = x
        if self.serve_delay > 0:
            self.serve_delay -= 1
        else:
            vy += GRAVITY * DT
            speed2 = vx * vx + vy * vy
            if speed2 > MAX_BALL_SPEED * MAX_BALL_SPEED:
                scale = MAX_BALL_SPEED / math.sqrt(speed2)
                vx *= scale
                vy *= scale
            x += vx * DT
            y += vy * DT
        ball[0], ball[1], ball[2], ball[3] = x, y, vx, vy
        for slime in self.slimes:
            _bounce(ball, slime[0], slime[1], slime[2], slime[3], SLIME_RADIUS)
        _bounce(ball, 0.0, NET_HEIGHT, 0.0, 0.0, NET_WIDTH / 2)  # the rounded top of the net
        return _edges(ball, previous_x)

    def _serve(self) -> None:
        assert self._rng is not None
        self._rng, a = _splitmix64(self._rng)
        self._rng, b = _splitmix64(self._rng)
        u, v = (a >> 11) * 2.0**-53, (b >> 11) * 2.0**-53
        vx = SERVE_SPEED_X[0] + (SERVE_SPEED_X[1] - SERVE_SPEED_X[0]) * u
        vy = SERVE_SPEED_Y[0] + (SERVE_SPEED_Y[1] - SERVE_SPEED_Y[0]) * v
        self.ball = [0.0, SERVE_HEIGHT, vx, vy]
        self.serve_delay = SERVE_DELAY_STEPS

    # --- observations ----------------------------------------------------------------------------
    def _observations(self) -> dict[str, tuple[float, ...]]:
        left, right = self.slimes
        ball = tuple(self.ball)
        return {"left": (*left, *ball, *right), "right": (*right, *ball, *left)}

    def _infos(self) -> dict[str, dict[str, Any]]:
        left, right = self.lives
        return {
            "left": {"lives": left, "opponent_lives": right},
            "right": {"lives": right, "opponent_lives": left},
        }

    def _check_agent(self, agent: str) -> None:
        if agent not in AGENTS:
            raise KeyError(f"unknown agent {agent!r}; the agents are {list(AGENTS)}.")

    def __repr__(self) -> str:
        return f"SlimeVolleyEnv(lives={self.lives_per_episode}, max_steps={self.max_steps})"


def _bounce(ball: list[float], px: float, py: float, pvx: float, pvy: float, radius: float) -> None:
    """If the ball overlaps the circle (px, py, radius), push it out along the line between the
    centres and reflect its velocity relative to the circle's."""
    reach = radius + BALL_RADIUS
    dx = ball[0] - px
    dy = ball[1] - py
    distance2 = dx * dx + dy * dy
    if distance2 >= reach * reach:
        return
    distance = math.sqrt(distance2)
    if distance == 0.0:  # dead centre: push straight up
        nx, ny = 0.0, 1.0
    else:
        nx, ny = dx / distance, dy / distance
    # Push out in small steps, as the classic game does (its feel depends on it).
    x, y = ball[0], ball[1]
    while (x - px) ** 2 + (y - py) ** 2 < reach * reach:
        x += nx * NUDGE
        y += ny * NUDGE
    ux = ball[2] - pvx
    uy = ball[3] - pvy
    un = ux * nx + uy * ny
    ux -= 2.0 * un * nx
    uy -= 2.0 * un * ny
    ball[0], ball[1], ball[2], ball[3] = x, y, ux + pvx, uy + pvy


def _edges(ball: list[float], previous_x: float) -> int | None:
    """Walls, ceiling, net and ground; the index of the player on whose side the ball landed."""
    x, y, vx, vy = ball
    landed: int | None = None
    low_x = BALL_RADIUS - COURT_HALF_WIDTH
    if x <= low_x:
        vx = -vx
        x = low_x + NUDGE * DT
    elif x >= -low_x:
        vx = -vx
        x = -low_x - NUDGE * DT
    if y <= BALL_RADIUS + GROUND_Y:
        vy = -vy
        y = BALL_RADIUS + GROUND_Y + NUDGE * DT
        landed = 0 if x <= 0 else 1
    elif y >= COURT_HEIGHT - BALL_RADIUS:
        vy = -vy
        y = COURT_HEIGHT - BALL_RADIUS - NUDGE * DT
    if landed is None and y <= NET_HEIGHT:
        side = NET_WIDTH / 2 + BALL_RADIUS
        if x <= side < previous_x:  # hit the net's right face, moving left
            vx = -vx
            x = side + NUDGE * DT
        elif previous_x < -side <= x:  # hit the net's left face, moving right
            vx = -vx
            x = -side - NUDGE * DT
    ball[0], ball[1], ball[2], ball[3] = x, y, vx, vy
    return landed


def make_env(**kwargs: Any) -> SlimeVolleyEnv:
    """A new :class:`SlimeVolleyEnv` (``GymScene(env_factory="igym_slime.env:make_env")``)."""
    return SlimeVolleyEnv(**kwargs)
