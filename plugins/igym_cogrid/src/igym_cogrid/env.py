"""The Overcooked kitchens of CoGrid as an igym environment (PettingZoo parallel API).

``GymScene(env_factory="igym_cogrid.env:make_env", env_kwargs={"layout": "cramped_room"})``.

Two chefs, ``chef_0`` and ``chef_1``, share a kitchen. They fetch onions from the onion crates,
put three in a pot (it then cooks for :data:`COOK_STEPS` steps), take a dish from the dish rack,
scoop the soup into it and carry it to the serving counter. Each soup served scores
:data:`SOUP_POINTS` for both chefs (the team score).

Actions (``Discrete(7)``, CoGrid's order, so data and models trained on CoGrid agree):

====  ==========  =========================================================
 0    up          move one cell up (or only turn to face up when blocked)
 1    down        move down
 2    left        move left
 3    right       move right
 4    interact    pick up / put down / use what the chef faces
 5    toggle      unused in these kitchens (kept so that the space is CoGrid's)
 6    no-op       stand still
====  ==========  =========================================================

:data:`KEYS` is the browser mapping (arrows move, space interacts).

Observations are chosen with ``observations=``:

- ``"compact"`` (the default): a small integer vector with the whole kitchen (see
  :func:`decode`), the acting chef first. Cheap to build; the scripted planner reads it.
- ``"cogrid"``: CoGrid's feature vector (892 floats per chef in the classic layouts), for models
  trained on CoGrid. Building it is more than half of a step's cost.

Either kind is built only for the seats in ``observed_agents`` (the others get zeros of the same
shape). igym's runtimes set them through :meth:`OvercookedEnv.set_observed_agents` to the bots'
seats (every seat when the scene records observations), so a human's observation, which nobody
reads, is never built.

Every step's ``infos[agent]`` has what the data needs: the layout, both chefs' positions, facing and
held items, the pots (onions, cooking steps left, ready), the soups served so far and in this step,
and whether the chef bumped into the other. The last step's info of an episode adds
``episode_summary`` (soups served, the score, steps).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np

__all__ = [
    "ACTION_NAMES",
    "AGENTS",
    "COOK_STEPS",
    "DOWN",
    "INTERACT",
    "KEYS",
    "LAYOUTS",
    "LEFT",
    "NOOP",
    "RIGHT",
    "SOUP_POINTS",
    "TOGGLE",
    "UP",
    "OvercookedEnv",
    "decode",
    "make_env",
]

AGENTS = ("chef_0", "chef_1")
UP, DOWN, LEFT, RIGHT, INTERACT, TOGGLE, NOOP = range(7)
ACTION_NAMES = ("up", "down", "left", "right", "interact", "toggle", "noop")
#: Browser keys → actions: arrows move, space interacts (``GymScene(action_mapping=KEYS)``).
KEYS = {"ArrowUp": UP, "ArrowDown": DOWN, "ArrowLeft": LEFT, "ArrowRight": RIGHT, " ": INTERACT}

#: igym layout name → CoGrid environment id (the classic Overcooked-AI kitchens).
LAYOUTS = {
    "cramped_room": "Overcooked-CrampedRoom-V0",
    "asymmetric_advantages": "Overcooked-AsymmetricAdvantages-V0",
    "coordination_ring": "Overcooked-CoordinationRing-V0",
    "forced_coordination": "Overcooked-ForcedCoordination-V0",
    "counter_circuit": "Overcooked-CounterCircuit-V0",
}
SOUP_POINTS = 20
COOK_STEPS = 30
ONIONS_PER_SOUP = 3

# CoGrid's object type ids (scope "overcooked"), checked against its registry at import.
EMPTY, FLOOR_ = 0, 1
COUNTER, DELIVERY, ONION, SOUP, ONION_PILE, DISH, DISH_PILE, POT = 2, 7, 8, 9, 11, 12, 13, 14
#: Held / placed item names by type id (``"nothing"`` for an empty hand).
ITEM_NAMES = {-1: "nothing", 0: "nothing", ONION: "onion", SOUP: "soup", DISH: "dish"}
#: Direction ids (CoGrid's: right, down, left, up) → names and (row, col) steps.
FACING = ("right", "down", "left", "up")
DIRECTION_STEPS = ((0, 1), (1, 0), (0, -1), (-1, 0))
#: Move actions → the direction id they face.
MOVE_DIRECTION = {UP: 3, DOWN: 1, LEFT: 2, RIGHT: 0}

_STATE_VERSION = 1
#: Header of the compact observation: height, width, number of pots, steps left.
_HEADER = 4
_AGENT_FIELDS = 4  # row, col, facing, held item type (-1 nothing)
_POT_FIELDS = 4  # row, col, onions, cooking steps left (COOK_STEPS until full, 0 when ready)


def _check_cogrid_ids() -> None:
    from cogrid.core.objects.registry import get_object_names

    names = get_object_names(scope="overcooked")
    expected = {
        COUNTER: "counter",
        DELIVERY: "delivery_zone",
        ONION: "onion",
        SOUP: "onion_soup",
        ONION_PILE: "onion_stack",
        DISH: "plate",
        DISH_PILE: "plate_stack",
        POT: "pot",
    }
    wrong = {i: (n, names[i] if i < len(names) else None) for i, n in expected.items() if names[i] != n}
    if wrong:
        raise ImportError(
            f"igym_cogrid expects CoGrid's object ids {expected}, but this cogrid has {wrong}. "
            "Install the version igym-cogrid was written for: uv pip install 'cogrid==0.3.2'."
        )


def _cogrid_env(layout: str, max_steps: int, observations: str) -> Any:
    try:
        from cogrid.envs import registry
    except ImportError as exc:  # pragma: no cover - cogrid is a dependency of this package
        raise ImportError("igym_cogrid needs cogrid: uv pip install 'cogrid==0.3.2'") from exc
    _check_cogrid_ids()
    factory = registry.ENVIRONMENT_REGISTRY[LAYOUTS[layout]]
    config = copy.deepcopy(factory.keywords["config"])
    config["max_steps"] = max_steps
    # CoGrid builds a feature vector for every agent in every step; ask it for its smallest one (4
    # floats, next to nothing). The adapter builds CoGrid's full features itself, and only for the
    # seats that need them (see _CogridFeatures).
    config["features"] = ["agent_dir"]
    return factory.func(config=config, agent_class=factory.keywords["agent_class"], backend="numpy")


class _CogridFeatures:
    """CoGrid's own feature vector (892 floats in the classic kitchens) for chosen agents, built
    with CoGrid's feature composer from the layout's registered feature list."""

    def __init__(self, env: Any, layout: str) -> None:
        from cogrid.core.autowire import build_feature_config_from_components
        from cogrid.core.component_registry import get_layout_index
        from cogrid.core.pipeline.step import envstate_to_dict
        from cogrid.envs import registry

        config = registry.ENVIRONMENT_REGISTRY[LAYOUTS[layout]].keywords["config"]
        built = build_feature_config_from_components(
            env.scope,
            list(config["features"]),
            n_agents=len(AGENTS),
            layout_idx=get_layout_index(env.scope, env.current_layout_id),
            env_config=config,
        )
        self._feature_fn = built["feature_fn"]
        self._view = envstate_to_dict

    def __call__(self, state: Any, index: int) -> np.ndarray:
        return np.asarray(self._feature_fn(self._view(state), index), dtype=np.float64)


def decode(observation: Any) -> dict[str, Any]:
    """The compact observation as a dict: ``height``, ``width``, ``steps_left``, ``me`` and
    ``other`` (``(row, col, facing, item)``), ``grid`` (rows of CoGrid type ids), ``on_top`` (rows
    of what lies on each cell: the item type on a counter, 0 for nothing), ``pots``
    (``(row, col, onions, cooking_steps_left)`` each)."""
    values = [int(v) for v in observation]
    height, width, n_pots, steps_left = values[:_HEADER]
    at = _HEADER
    me = tuple(values[at : at + _AGENT_FIELDS])
    other = tuple(values[at + _AGENT_FIELDS : at + 2 * _AGENT_FIELDS])
    at += 2 * _AGENT_FIELDS
    cells = height * width
    grid = [values[at + r * width : at + (r + 1) * width] for r in range(height)]
    at += cells
    on_top = [values[at + r * width : at + (r + 1) * width] for r in range(height)]
    at += cells
    pots = [tuple(values[at + i * _POT_FIELDS : at + (i + 1) * _POT_FIELDS]) for i in range(n_pots)]
    return {
        "height": height,
        "width": width,
        "steps_left": steps_left,
        "me": me,
        "other": other,
        "grid": grid,
        "on_top": on_top,
        "pots": pots,
    }


class OvercookedEnv:
    """An Overcooked kitchen (CoGrid) for two chefs, with igym's contract: string agent names,
    seeded determinism, ``get_state`` / ``set_state`` / ``state_hash`` for rollback.

    Args:
        layout: one of :data:`LAYOUTS` (``"cramped_room"``, ...).
        max_steps: steps per episode (600 is a minute at 10 steps a second).
        fps: the scene's steps per second; only for the time left shown in the picture.
        observations: ``"compact"`` or ``"cogrid"`` (see the module's documentation).
        observed_agents: the seats whose observation is built (None: all); other seats get zeros.
            igym's runtimes replace it with the bots' seats (:meth:`set_observed_agents`), so
            there is no need to set it in a scene.
        shaped_rewards: False (the default): each chef's reward is the team's points for soups
            served this step. True: CoGrid's shaped rewards (also 3 per onion put in a pot and 5
            per soup put in a dish).
    """

    metadata = {"name": "igym_cogrid_overcooked", "render_modes": []}

    def __init__(
        self,
        *,
        layout: str = "cramped_room",
        max_steps: int = 600,
        fps: int = 10,
        observations: str = "compact",
        observed_agents: tuple[str, ...] | list[str] | None = None,
        shaped_rewards: bool = False,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(
                f"layout must be one of {', '.join(sorted(LAYOUTS))}; got {layout!r}. Example: "
                "env_kwargs={'layout': 'cramped_room'}."
            )
        if observations not in ("compact", "cogrid"):
            raise ValueError(f"observations must be 'compact' or 'cogrid'; got {observations!r}.")
        if observed_agents is not None:
            observed_agents = tuple(observed_agents)
            unknown = [a for a in observed_agents if a not in AGENTS]
            if unknown:
                raise ValueError(
                    f"observed_agents must name seats of {AGENTS}; got {unknown!r}. Example: "
                    "observed_agents=('chef_1',) for a bot in chef_1's seat."
                )
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a whole number of steps, 1 or more; got {max_steps!r}.")
        if not isinstance(fps, int) or isinstance(fps, bool) or fps < 1:
            raise ValueError(f"fps must be the scene's whole number of steps per second; got {fps!r}.")
        self.layout = layout
        self.fps = fps
        self.max_steps = max_steps
        self.observations = observations
        self.shaped_rewards = bool(shaped_rewards)
        self.observed_agents = AGENTS if observed_agents is None else observed_agents
        self._env = _cogrid_env(layout, max_steps, observations)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.height, self.width = self._env.shape
        self.steps = 0
        self.soups_delivered = 0
        self.score = 0
        self.collisions = 0
        self._last_infos: dict[str, dict[str, Any]] = {}
        self.action_spaces = {a: gymnasium.spaces.Discrete(7) for a in AGENTS}
        # Build once to learn the static layout (pots, sizes) and the observation size.
        self._env.reset(seed=0)
        self._static_types = np.asarray(self._env._env_state.object_type_map).copy()
        pots = np.asarray(self._env._env_state.extra_state["overcooked.pot_positions"]).reshape(-1, 2)
        self.pot_positions = [(int(r), int(c)) for r, c in pots]
        self._features: _CogridFeatures | None = None
        if observations == "cogrid":
            self._features = _CogridFeatures(self._env, layout)
            size = int(self._features(self._env._env_state, 0).shape[0])
            space: gymnasium.Space[Any] = gymnasium.spaces.Box(-np.inf, np.inf, (size,), np.float64)
        else:
            size = _HEADER + 2 * _AGENT_FIELDS + 2 * self.height * self.width + _POT_FIELDS * len(pots)
            high = max(self.max_steps, 64, self.height, self.width)
            space = gymnasium.spaces.Box(-1, high, (size,), np.int64)
        self.observation_spaces = {a: space for a in AGENTS}

    # --- PettingZoo parallel API ---------------------------------------------------------------
    def observation_space(self, agent: str) -> gymnasium.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.Space[Any]:
        return self.action_spaces[agent]

    @property
    def unwrapped(self) -> OvercookedEnv:
        return self

    @property
    def cogrid_env(self) -> Any:
        """The wrapped CoGrid environment."""
        return self._env

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        # CoGrid's reset(seed=None) would reuse its default seed 42; draw a fresh one instead so
        # that unseeded resets differ, from the env's own generator (seeded on construction).
        if seed is None:
            seed = int(self._env.np_random.integers(2**31))
        raw, _ = self._env.reset(seed=int(seed))
        self.agents = list(AGENTS)
        self.steps = 0
        self.soups_delivered = 0
        self.score = 0
        self.collisions = 0
        infos = {a: self._info(i, delivered=0, collided=False) for i, a in enumerate(AGENTS)}
        self._last_infos = infos
        return self._observations(raw), infos

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        if not self.agents:
            raise RuntimeError("step() after the episode ended; call reset() first.")
        chosen = [self._action_of(actions, agent) for agent in AGENTS]
        before = self._env._env_state
        positions = np.asarray(before.agent_pos).copy()
        held = np.asarray(before.agent_inv)[:, 0].copy()
        raw, cogrid_rewards, terminations, truncations, _ = self._env.step(dict(enumerate(chosen)))
        state = self._env._env_state
        now_positions = np.asarray(state.agent_pos)
        now_held = np.asarray(state.agent_inv)[:, 0]
        delivered = 0
        collided = [False, False]
        for i, action in enumerate(chosen):
            if held[i] == SOUP and now_held[i] != SOUP and self._faces(state, i) == DELIVERY:
                delivered += 1
            if action in MOVE_DIRECTION and (now_positions[i] == positions[i]).all():
                dr, dc = DIRECTION_STEPS[MOVE_DIRECTION[action]]
                target = (int(positions[i][0]) + dr, int(positions[i][1]) + dc)
                others = {tuple(int(v) for v in p) for j, p in enumerate(positions) if j != i} | {
                    tuple(int(v) for v in p) for j, p in enumerate(now_positions) if j != i
                }
                collided[i] = target in others and self._walkable(target)
        self.steps += 1
        self.soups_delivered += delivered
        self.score += delivered * SOUP_POINTS
        self.collisions += sum(collided)
        done = bool(any(terminations.values()) or any(truncations.values()))
        if self.shaped_rewards:
            rewards = {a: float(cogrid_rewards[i]) for i, a in enumerate(AGENTS)}
        else:
            rewards = {a: float(delivered * SOUP_POINTS) for a in AGENTS}
        infos = {a: self._info(i, delivered=delivered, collided=collided[i]) for i, a in enumerate(AGENTS)}
        if done:
            summary = self.episode_summary()
            for info in infos.values():
                info["episode_summary"] = summary
        terms = {a: bool(terminations[i]) for i, a in enumerate(AGENTS)}
        truncs = {a: bool(truncations[i]) for i, a in enumerate(AGENTS)}
        observations = self._observations(raw)
        if done:
            self.agents = []
        self._last_infos = infos
        return observations, rewards, terms, truncs, infos

    def episode_summary(self) -> dict[str, Any]:
        """The episode so far: layout, steps, soups served, the score, collisions."""
        return {
            "layout": self.layout,
            "steps": self.steps,
            "soups_delivered": self.soups_delivered,
            "score": self.score,
            "collisions": self.collisions,
        }

    def render(self) -> list[Any]:
        """Render objects for igym's object renderer (see :func:`igym_cogrid.render.draw`)."""
        from igym_cogrid.render import draw

        return draw(self)

    def close(self) -> None:
        self._env.close()

    # --- what the renderer, the bot and the data read ------------------------------------------
    def chefs(self) -> list[tuple[int, int, int, int]]:
        """``(row, col, facing, held item type)`` of each chef (facing: 0 right, 1 down, 2 left, 3 up)."""
        state = self._env._env_state
        pos = np.asarray(state.agent_pos)
        direction = np.asarray(state.agent_dir)
        inv = np.asarray(state.agent_inv)[:, 0]
        return [(int(pos[i][0]), int(pos[i][1]), int(direction[i]), int(inv[i])) for i in range(len(AGENTS))]

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """``(types, on_top)``: the CoGrid type id of each cell and what lies on it (counters)."""
        state = self._env._env_state
        return np.asarray(state.object_type_map), np.asarray(state.object_state_map)

    def pots(self) -> list[tuple[int, int, int, int]]:
        """``(row, col, onions, cooking steps left)`` of each pot; steps left is :data:`COOK_STEPS`
        until the pot is full and 0 when the soup is ready."""
        extra = self._env._env_state.extra_state
        contents = np.asarray(extra["overcooked.pot_contents"]).reshape(len(self.pot_positions), -1)
        timers = np.asarray(extra["overcooked.pot_timer"]).reshape(-1)
        return [
            (r, c, int((contents[i] >= 0).sum()), int(timers[i]))
            for i, (r, c) in enumerate(self.pot_positions)
        ]

    def set_observed_agents(self, agents: frozenset[str]) -> dict[str, Any]:
        """Build observations only for ``agents`` from now on (the others get zeros); igym's
        runtimes call it with the seats whose observation is read (the bots').

        Returns the current observation of each seat newly in the set (empty between episodes),
        so that a bot taking over a seat mid-episode acts on a real observation.
        """
        unknown = sorted(str(a) for a in agents if a not in AGENTS)
        if unknown:
            raise ValueError(f"set_observed_agents takes seats of {AGENTS}; got {unknown!r}.")
        added = [a for a in AGENTS if a in agents and a not in self.observed_agents]
        self.observed_agents = tuple(a for a in AGENTS if a in agents)
        if not added or not self.agents:
            return {}
        current = self._observations(None)
        return {a: current[a] for a in added}

    # --- rollback ------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The full state as a JSON-able dict (a copy): CoGrid's state (its generator included),
        the live agents and the episode's counters."""
        return {
            "version": _STATE_VERSION,
            "layout": self.layout,
            "agents": list(self.agents),
            "steps": self.steps,
            "soups_delivered": self.soups_delivered,
            "score": self.score,
            "collisions": self.collisions,
            "cogrid": self._env.get_state(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state :meth:`get_state` returned (also after a JSON round trip)."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"expected a state from OvercookedEnv.get_state() (version {_STATE_VERSION}); got "
                f"{str(state)[:80]!r}."
            )
        if state["layout"] != self.layout:
            raise ValueError(
                f"the state is of layout {state['layout']!r}, this env's is {self.layout!r}; restore "
                "it into an env made with the same layout."
            )
        self._env.set_state(copy.deepcopy(dict(state["cogrid"])))
        self.agents = [str(a) for a in state["agents"]]
        self.steps = int(state["steps"])
        self.soups_delivered = int(state["soups_delivered"])
        self.score = int(state["score"])
        self.collisions = int(state["collisions"])

    def state_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`get_state`: equal exactly for equal states."""
        text = json.dumps(self.get_state(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # --- internals -----------------------------------------------------------------------------
    @staticmethod
    def _action_of(actions: Mapping[str, Any], agent: str) -> int:
        action = actions.get(agent, NOOP)
        try:
            value = int(action)
        except (TypeError, ValueError):
            raise ValueError(f"the action of {agent!r} must be an int 0..6; got {action!r}.") from None
        if not 0 <= value < len(ACTION_NAMES):
            raise ValueError(f"the action of {agent!r} must be an int 0..6; got {action!r}.")
        return value

    def _walkable(self, cell: tuple[int, int]) -> bool:
        r, c = cell
        return 0 <= r < self.height and 0 <= c < self.width and int(self._static_types[r][c]) == EMPTY

    def _faces(self, state: Any, i: int) -> int:
        r, c = (int(v) for v in np.asarray(state.agent_pos)[i])
        dr, dc = DIRECTION_STEPS[int(np.asarray(state.agent_dir)[i])]
        r, c = r + dr, c + dc
        if 0 <= r < self.height and 0 <= c < self.width:
            return int(np.asarray(state.object_type_map)[r][c])
        return -1

    def _observations(self, raw: Mapping[Any, Any] | None) -> dict[str, Any]:
        observed = self.observed_agents
        space = self.observation_spaces[AGENTS[0]]
        if self._features is not None:
            state = self._env._env_state
            return {
                a: self._features(state, i) if a in observed else np.zeros(space.shape, space.dtype)
                for i, a in enumerate(AGENTS)
            }
        if not observed:
            return {a: np.zeros(space.shape, space.dtype) for a in AGENTS}
        chefs = self.chefs()
        types, on_top = self.cells()
        common = [*types.reshape(-1).tolist(), *on_top.reshape(-1).tolist()]
        for pot in self.pots():
            common.extend(pot)
        header = [self.height, self.width, len(self.pot_positions), self.max_steps - self.steps]
        out = {}
        for i, agent in enumerate(AGENTS):
            if agent in observed:
                out[agent] = np.asarray([*header, *chefs[i], *chefs[1 - i], *common], dtype=np.int64)
            else:
                out[agent] = np.zeros(space.shape, space.dtype)
        return out

    def _info(self, i: int, *, delivered: int, collided: bool) -> dict[str, Any]:
        chefs = self.chefs()
        row, col, facing, item = chefs[i]
        orow, ocol, ofacing, oitem = chefs[1 - i]
        return {
            "layout": self.layout,
            "position": [row, col],
            "facing": FACING[facing],
            "holding": ITEM_NAMES.get(item, str(item)),
            "partner_position": [orow, ocol],
            "partner_facing": FACING[ofacing],
            "partner_holding": ITEM_NAMES.get(oitem, str(oitem)),
            "pots": [
                {
                    "position": [r, c],
                    "onions": n,
                    "cooking_steps_left": t,
                    "ready": n == ONIONS_PER_SOUP and t == 0,
                }
                for r, c, n, t in self.pots()
            ],
            "soups_delivered": self.soups_delivered,
            "delivered_this_step": delivered,
            "score": self.score,
            "collided": collided,
        }


def make_env(**kwargs: Any) -> OvercookedEnv:
    """A new :class:`OvercookedEnv` (``GymScene(env_factory="igym_cogrid.env:make_env")``)."""
    return OvercookedEnv(**kwargs)
