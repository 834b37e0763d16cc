"""One participant's game, stepped in their browser: :class:`BrowserGame`.

The worker owns the clock (drift-free deadlines at the scene's fps) and calls, per tick::

    game.set_held(keys)                       # whenever the page's key state changed
    wanted = game.js_due()                    # ONNX bots that choose now: [(agent, observation)]
    result = game.step(t_ms, js_actions)      # {"frame": ..., "done": ..., "end_reason": ...}
    batch = game.take_batch()                 # at least once a second and at episode end

and ``game.start_episode(episode, seed)`` when the server issues an episode (``pyodide_episode``).

Every rule here is the server runtime's (``igym_core.builtin.runtime_server``), so that a game
records the same steps whichever runtime plays it:

- each seat's action comes from the rules both runtimes share, :mod:`igym_core.builtin.seat_actions`
  (keys → actions with the scene's :class:`~igym_core.builtin.gym_keys.ActionTable`, held keys
  sampled at each step or one press per step in ``press`` mode, presses only while playing; a
  bot chooses every ``act_every`` steps and repeats or plays the default in between; a chosen
  action outside the seat's ``Discrete`` space fails the game); an ONNX bot's choice comes from
  JavaScript (:meth:`BrowserGame.js_due`, then ``step(t_ms, js_actions)``);
- each episode resets the env with the seed the server issued and each bot's policy with
  ``agent_seed(seed, agent)`` (a ``random`` bot draws exactly the server's actions, see
  :mod:`.rng`);
- the episode ends when every agent is terminated or truncated (``terminated`` if any agent
  terminated) or at ``max_steps`` (``max_steps``);
- frames are the server's ``frame`` messages: the same render objects through the same
  :class:`~igym_core.rendering.delta.DeltaEncoder`, and the server's default HUD text.

Step data leaves as ``step_batch`` messages (the wire protocol of the pyodide runtime): numbered
from 1 per game, each holding consecutive steps of one episode, with the env's state hashes
(after the reset, every ``hash_every`` steps and at the episode's last step).
"""

from __future__ import annotations

import importlib
import inspect
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from igym_core.builtin.gym_keys import ActionTable
from igym_core.builtin.seat_actions import SeatBot, discrete_check, human_action
from igym_core.errors import EnvContractError, IgymError
from igym_core.rendering.delta import DeltaEncoder
from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import RenderObject
from igym_pyodide_p2p.browser.rng import DiscreteSampler
from igym_pyodide_p2p.browser.seeds import agent_seed
from igym_pyodide_p2p.browser.spec import BotSpec, GameSpec

__all__ = ["BrowserGame", "BrowserHudView", "import_ref", "plain"]

_PLAIN_TYPES = (bool, int, float, str)
_COLLECTIONS = (list, tuple)


def import_ref(ref: str) -> Any:
    """The object a ``"module:attribute"`` reference names (``attribute`` may be dotted)."""
    module_name, _, attribute = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise IgymError(
            f"The browser could not import {module_name!r} (for {ref!r}): {exc}. Its package must be "
            "installable in Pyodide: pure Python, and listed by `igym check`."
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise IgymError(f"{module_name!r} has no attribute {attribute!r} (for {ref!r}).") from None
    return target


def plain(value: Any) -> Any:
    """JSON/msgpack-ready form of an action, reward, observation or info (tuples → lists, dict keys
    → str); what the server runtime's ``plain`` gives for values without NumPy."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, _COLLECTIONS):
        return [plain(v) for v in value]
    return repr(value)


@attrs.frozen(kw_only=True)
class BrowserHudView:
    """What a scene's ``hud`` function sees: the fields of ``igym_core``'s ``HudView``."""

    episode: int
    num_episodes: int
    step: int
    max_steps: int | None
    seat: str
    returns: Mapping[str, float]
    rewards: Mapping[str, float]
    env: Any


class _FunctionPolicy:
    __slots__ = ("act",)

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.act = function


class _ConstantPolicy:
    __slots__ = ("action",)

    def __init__(self, action: Any) -> None:
        self.action = action

    def act(self, observation: Any) -> Any:
        return self.action


class _JsPolicy:
    """A seat whose action comes from JavaScript (ONNX via igym_onnx's browser module): ``step``
    puts it in the bot's ``pending``; asked to choose, there was none."""

    __slots__ = ("seat",)

    def __init__(self, seat: str) -> None:
        self.seat = seat

    def act(self, observation: Any) -> Any:
        raise RuntimeError(f"no action from JavaScript for the ONNX bot {self.seat!r}")


def _python_policy(bot: BotSpec, agent: str) -> Any:
    """As igym_core's ``python`` policy loader: a class is instantiated (with ``agent`` if it takes
    it), an object with ``act`` is used as it is, a function becomes ``act``."""
    assert bot.target is not None
    target = import_ref(bot.target)
    if isinstance(target, type):
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            parameters = {}
        required = [
            p.name
            for p in parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and p.name != "agent"
        ]
        if required:
            raise IgymError(
                f"The python policy {bot.target!r} needs {', '.join(required)} to be built, which the "
                "browser cannot give (there are no Gymnasium spaces in the browser). Give those "
                "parameters defaults, or name a function or an object with act()."
            )
        takes_agent = "agent" in parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
        )
        return target(agent=agent) if takes_agent else target()
    if callable(getattr(target, "act", None)):
        return target
    if callable(target):
        return _FunctionPolicy(target)
    raise IgymError(
        f"The python policy {bot.target!r} is a {type(target).__name__}; expected a function "
        "observation -> action, a policy class, or an object with an act(observation) method."
    )


def _bot(spec: BotSpec, agent: str, space: tuple[int, int] | None) -> SeatBot:
    """The seat's bot, with its policy as the server builds it and its ``Discrete(n, start)`` space."""
    policy: Any
    if spec.kind == "random":
        assert spec.n is not None
        policy = DiscreteSampler(spec.n, spec.start, seed=spec.seed)
    elif spec.kind == "python":
        policy = _python_policy(spec, agent)
    elif spec.kind == "constant":
        policy = _ConstantPolicy(spec.action)
    else:
        policy = _JsPolicy(agent)
    if space is None:
        return SeatBot(policy, spec.act_every, spec.between, seat=agent)
    n, start = space
    description = f"Discrete({n})" if start == 0 else f"Discrete({n}, start={start})"
    check = discrete_check(n, start)
    return SeatBot(policy, spec.act_every, spec.between, action_ok=check, space=description, seat=agent)


class BrowserGame:
    """One participant's game in the browser (see the module docstring).

    Args:
        spec: the scene as the server described it.
        game_id: the server's id of this game (every message carries it).
        first_batch: the number of the next batch (1 for a new game; after a reload the page
            continues the numbering the server acknowledged).
    """

    def __init__(self, spec: GameSpec, *, game_id: str, first_batch: int = 1) -> None:
        self.spec = spec
        self.game_id = game_id
        factory = import_ref(spec.env_factory)
        self.env = factory(**dict(spec.env_kwargs))
        missing = [n for n in ("possible_agents", "agents", "reset", "step") if not hasattr(self.env, n)]
        if missing:
            raise EnvContractError(
                f"The env from {spec.env_factory!r} lacks {', '.join(missing)}: the browser runs "
                "PettingZoo-style parallel envs written in pure Python."
            )
        self.agent_names = {agent: str(agent) for agent in self.env.possible_agents}
        self.agent_of_name = {name: agent for agent, name in self.agent_names.items()}
        if set(self.agent_of_name) != set(spec.agents):
            raise EnvContractError(
                f"The env's agents in the browser, {sorted(self.agent_of_name)}, differ from the "
                f"server's, {sorted(spec.agents)}."
            )
        self.render_fn: Callable[[Any], Any] | None = import_ref(spec.render_fn) if spec.render_fn else None
        self.hud_fn: Callable[[Any], Any] | None = import_ref(spec.hud) if spec.hud else None
        self.table = ActionTable(spec.action_mapping, spec.default_action)
        self.human = self.agent_of_name[spec.human_seat]
        self.bots: dict[Any, SeatBot] = {
            self.agent_of_name[name]: _bot(bot, name, spec.action_spaces.get(name))
            for name, bot in spec.bots.items()
        }
        # Observations only for the seats that read them (igym_core.envs.contract): the bots', or
        # every seat when the scene records them. Inline: that module needs gymnasium, which the
        # browser lacks. A one-human game's bots never change seats, so it is told once.
        observe = getattr(self.env, "set_observed_agents", None)
        if callable(observe):
            observe(frozenset(self.env.possible_agents) if spec.record_observations else frozenset(self.bots))
        #: The bots whose actions come from JavaScript (ONNX).
        self.js_bots: frozenset[Any] = frozenset(
            agent for agent, bot in self.bots.items() if isinstance(bot.policy, _JsPolicy)
        )
        self._held_mode = spec.input_mode == "held"
        self.held: tuple[str, ...] = ()
        self._held_now: tuple[str, ...] = ()
        self.presses: deque[str] = deque(maxlen=64)
        self.encoder = DeltaEncoder()
        self._object_classes: set[type] = set()
        self.episode = 0
        self.seed = 0
        self.step_count = 0
        self.ticks = 0
        self.max_steps = spec.max_steps
        self.obs: dict[Any, Any] = {}
        self.returns: dict[Any, float] = {}
        self.last_rewards: dict[Any, Any] = {}
        self.playing = False
        self.end_reason: str | None = None
        self.hud_text = ""
        self._hud_failed = False
        self._next_batch = first_batch
        self._pending: list[dict[str, Any]] = []
        self._pending_hashes: list[list[Any]] = []
        self._has_hash = callable(getattr(self.env, "state_hash", None))

    # --- input -------------------------------------------------------------------------------
    def set_held(self, keys: Sequence[str]) -> None:
        """The keys the participant holds now (oldest press first), as the page reports them."""
        self.held = self.table.listened(keys)

    def press(self, keys: Sequence[str]) -> None:
        """Key presses (``press`` mode): each is used at one step. Ignored between episodes."""
        if self.playing:
            self.presses.extend(self.table.listened(keys, unique=False))

    # --- episodes ----------------------------------------------------------------------------
    def start_episode(
        self, episode: int, seed: int, *, max_steps: int | None = None, next_batch: int | None = None
    ) -> dict[str, Any]:
        """Reset for ``episode`` with the server's ``seed``; return the episode's first frame.

        ``next_batch``: the number the server expects next (a new page after a reload continues
        the game's numbering); None keeps this page's own count."""
        if self._pending:
            raise RuntimeError("start_episode() with steps not yet taken by take_batch()")
        if next_batch is not None:
            self._next_batch = int(next_batch)
        self.episode = int(episode)
        self.seed = int(seed)
        if max_steps is not None:
            self.max_steps = max_steps
        self.step_count = 0
        self.end_reason = None
        self.returns = {agent: 0.0 for agent in self.env.possible_agents}
        self.last_rewards = {}
        self.obs, _infos = self.env.reset(seed=self.seed)
        for agent, bot in self.bots.items():
            bot.new_episode()
            reset = getattr(bot.policy, "reset", None)
            if reset is not None and agent not in self.js_bots:
                reset(seed=agent_seed(self.seed, self.agent_names[agent]))
        self.presses.clear()
        self.playing = True
        self._hash()
        return self._frame(self.ticks, t_ms=None, keyframe=True)

    def bot_seeds(self) -> dict[str, int]:
        """Each JavaScript bot's seed for this episode (the server's ``agent_seed``)."""
        return {
            self.agent_names[agent]: agent_seed(self.seed, self.agent_names[agent]) for agent in self.js_bots
        }

    # --- stepping ----------------------------------------------------------------------------
    def js_due(self) -> list[tuple[str, Any]]:
        """The JavaScript bots that choose an action at the next step, with their observations."""
        step = self.step_count
        live = self.env.agents
        return [
            (self.agent_names[agent], plain(self.obs.get(agent)))
            for agent in self.js_bots
            if agent in live and self.bots[agent].due(step)
        ]

    def step(self, t_ms: float, js_actions: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One step at the participant's time ``t_ms`` (epoch ms). ``js_actions``: agent name →
        action for the bots :meth:`js_due` named. Returns ``{"frame", "done", "end_reason"}``."""
        if not self.playing:
            raise RuntimeError("step() outside an episode: wait for the server's next episode")
        env = self.env
        table = self.table
        default = table.default
        step = self.step_count
        actions: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        for agent in env.agents:
            if agent == self.human:
                actions[agent], sources[agent], self._held_now = human_action(
                    table, self._held_mode, self.held, self.presses
                )
                continue
            bot = self.bots.get(agent)
            if bot is None:
                actions[agent] = default
                sources[agent] = "default"
                continue
            if js_actions and agent in self.js_bots and bot.due(step):
                name = self.agent_names[agent]
                if name in js_actions:
                    bot.pending = js_actions[name]
            actions[agent], sources[agent] = bot.act(step, self.obs.get(agent), default)
        observations_before = self.obs
        obs, rewards, terminations, truncations, infos = env.step(actions)
        self.step_count = step = step + 1
        self.ticks += 1
        returns = self.returns
        record: dict[str, Any] = {
            "step": step,
            "t_ms": t_ms,
            "actions": {},
            "sources": {},
            "keys": {},
            "rewards": {},
            "terminated": {},
            "truncated": {},
            "infos": {} if infos else None,
        }
        for agent, action in actions.items():
            name = self.agent_names[agent]
            reward = plain(rewards.get(agent, 0.0))
            returns[agent] = returns.get(agent, 0.0) + (reward or 0.0)
            record["actions"][name] = plain(action)
            record["sources"][name] = sources[agent]
            if agent == self.human:
                record["keys"][name] = list(self._held_now)
            record["rewards"][name] = reward
            record["terminated"][name] = bool(terminations.get(agent, False))
            record["truncated"][name] = bool(truncations.get(agent, False))
            if infos:
                record["infos"][name] = plain(infos.get(agent))
        if self.spec.record_observations:
            record["observations"] = {self.agent_names[a]: plain(observations_before.get(a)) for a in actions}
        self._pending.append(record)
        self.last_rewards = rewards
        self.obs = obs
        done = True
        for agent in actions:
            if not (terminations.get(agent, False) or truncations.get(agent, False)):
                done = False
                break
        end_reason = None
        if done or not env.agents:
            end_reason = "terminated" if any(terminations.get(a, False) for a in actions) else "truncated"
        elif self.max_steps is not None and step >= self.max_steps:
            end_reason = "max_steps"
        if end_reason is not None:
            self.playing = False
            self.end_reason = end_reason
            self._hash(force=True)
        elif step % self.spec.hash_every == 0:
            self._hash()
        frame = self._frame(self.ticks, t_ms=t_ms, keyframe=False)
        return {"frame": frame, "done": end_reason is not None, "end_reason": end_reason}

    def _hash(self, *, force: bool = False) -> None:
        if not self._has_hash:
            return
        step = self.step_count
        if self._pending_hashes and self._pending_hashes[-1][0] == step:
            return
        if force or step % self.spec.hash_every == 0:
            self._pending_hashes.append([step, str(self.env.state_hash())])

    # --- frames ------------------------------------------------------------------------------
    def _objects(self) -> tuple[RenderObject, ...]:
        result = self.render_fn(self.env) if self.render_fn is not None else self.env.render()
        if not isinstance(result, (list, tuple)) and not inspect.isgenerator(result):
            source = "render_fn(env)" if self.render_fn is not None else "env.render()"
            raise RenderError(
                f"{source} returned {type(result).__name__}; the browser draws a list of igym render "
                "objects (the 'objects' renderer)."
            )
        objects = tuple(result)
        # Each class is checked once (a frame holds tens of objects of a few classes).
        known = self._object_classes
        if known.issuperset(map(type, objects)):
            return objects
        for index, obj in enumerate(objects):
            if isinstance(obj, RenderObject):
                known.add(type(obj))
            else:
                raise RenderError(
                    f"item {index} of the rendered frame is a {type(obj).__name__}, not an igym render "
                    "object."
                )
        return objects

    def _hud(self) -> str:
        if self.hud_fn is None:
            return f"Score {self.returns.get(self.human, 0.0):g}"
        view = BrowserHudView(
            episode=self.episode,
            num_episodes=self.spec.num_episodes,
            step=self.step_count,
            max_steps=self.spec.max_steps,
            seat=self.spec.human_seat,
            returns={self.agent_names[a]: v for a, v in self.returns.items()},
            rewards={self.agent_names.get(a, str(a)): plain(v) for a, v in self.last_rewards.items()},
            env=self.env,
        )
        try:
            return str(self.hud_fn(view))
        except Exception:
            if not self._hud_failed:
                self._hud_failed = True
                import traceback

                traceback.print_exc()
            return ""

    def _frame(self, tick: int, *, t_ms: float | None, keyframe: bool) -> dict[str, Any]:
        fields = self.encoder.update_fields(self._objects())
        hud = self._hud()
        message: dict[str, Any] = {
            "type": "frame",
            "game_id": self.game_id,
            "tick": tick,
            "episode": self.episode,
            "step": self.step_count,
            "t": t_ms,
        }
        if keyframe:
            message.update(key=True, hud=hud, add=self.encoder.keyframe())
        else:
            message["key"] = False
            message.update(fields)
            if hud != self.hud_text:
                message["hud"] = hud
        self.hud_text = hud
        return message

    def keyframe(self) -> dict[str, Any]:
        """Every current object (for a view that was reset)."""
        return {
            "type": "frame",
            "game_id": self.game_id,
            "tick": self.ticks,
            "episode": self.episode,
            "step": self.step_count,
            "t": None,
            "key": True,
            "hud": self.hud_text,
            "add": self.encoder.keyframe(),
        }

    # --- step data ---------------------------------------------------------------------------
    def take_batch(self) -> dict[str, Any] | None:
        """A ``step_batch`` of the steps made since the last one (None if there are none)."""
        if not self._pending:
            return None
        steps = self._pending
        self._pending = []
        hashes = self._pending_hashes
        self._pending_hashes = []
        batch = {
            "type": "step_batch",
            "game_id": self.game_id,
            "batch": self._next_batch,
            "episode": self.episode,
            "first_step": steps[0]["step"],
            "steps": steps,
            "hashes": hashes,
        }
        self._next_batch += 1
        return batch

    def episode_done(self) -> dict[str, Any]:
        """The ``episode_done`` message (after the episode's last batch)."""
        if self.playing or self.end_reason is None:
            raise RuntimeError("episode_done() before the episode ended")
        return {
            "type": "episode_done",
            "game_id": self.game_id,
            "episode": self.episode,
            "steps": self.step_count,
            "end_reason": self.end_reason,
        }

    def stop(self, reason: str) -> None:
        """End the episode now (the server ended the game): no more steps."""
        if self.playing:
            self.playing = False
            self.end_reason = reason
