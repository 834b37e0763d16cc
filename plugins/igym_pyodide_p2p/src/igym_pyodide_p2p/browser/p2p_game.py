"""One peer's game of the ``pyodide_p2p`` runtime: :class:`P2PBrowserGame`.

The page's worker drives it (the same calls under CPython drive the tests' peers)::

    game = P2PBrowserGame(spec, game_id=..., seat="left", partner_seat="right", authority=True, ...)
    game.handshake(now_ms)                  # a few times before the first episode: pings
    game.start_episode(episode=1, seed=..., max_steps=..., fps=...)
    # on the page's drift-free deadlines (period = 1000 / fps * out["period_scale"]):
    game.set_held(keys)
    out = game.tick(now_ms)                 # {"frame", "send", "events", "period_scale", "waiting", "done"}
    for data in out["send"]: send it to the partner (DataChannel or p2p_relay), unchanged
    game.receive(data, now_ms)              # every packet from the partner; returns events
    batch = game.take_batch()               # confirmed frames only (step_batch wire)
    if out["done"]: send the last batch, then game.episode_done()

It is :class:`~igym_pyodide_p2p.browser.stepper.BrowserGame` (key mapping, frames, HUD, the
``step_batch`` wire) with the env stepped by a :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine`:
this seat's keys become this seat's input (``[action, mapped, keys]``), exchanged with the partner,
and each confirmed frame becomes one step of the batch with ``p2p: {rollbacks, predicted}``. After a
rollback the frame drawn is the corrected present (a delta against what was last drawn). The state a
peer saves every frame is the env's ``get_state()`` plus the returns and observations the HUD, the
records and a partner-seat bot need.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from igym_core.builtin.seat_actions import SeatBot
from igym_core.errors import EnvContractError
from igym_pyodide_p2p.browser.rollback import EngineError, RollbackEngine
from igym_pyodide_p2p.browser.rollback_packets import (
    DEFAULT_MAX_STATE_BYTES,
    MAX_PACKET_BYTES,
    Reassembler,
    Refused,
    split_packet,
)
from igym_pyodide_p2p.browser.spec import BotSpec, GameSpec
from igym_pyodide_p2p.browser.stepper import BrowserGame, _bot, plain

__all__ = ["ROLLBACK_METHODS", "P2PBrowserGame"]

#: The env methods a P2P game needs.
ROLLBACK_METHODS = ("get_state", "set_state", "state_hash")

_MAX_KEYS = 16
_MAX_KEY_LENGTH = 40


class P2PBrowserGame(BrowserGame):
    """One peer's game (see the module docstring).

    Args:
        spec: the scene as the server described it (``bots`` must be empty: both seats are people).
        game_id: the server's id of the game (packets and messages carry it).
        seat, partner_seat: this page's seat and the partner's.
        authority: this page repairs desyncs and gives a reloading partner its state.
        input_delay: frames, or ``"auto"`` (from the handshake's round trip).
        window: the prediction window (frames).
        hash_every: confirmed frames between state hashes compared with the partner.
        silent_notice_ms, lost_after_ms: the disconnect timers.
        first_batch: the number of the next ``step_batch`` (continues the server's count after a reload).
    """

    def __init__(
        self,
        spec: GameSpec,
        *,
        game_id: str,
        seat: str,
        partner_seat: str,
        authority: bool,
        input_delay: int | str = 2,
        window: int = 8,
        hash_every: int = 10,
        silent_notice_ms: float = 750,
        lost_after_ms: float = 5000,
        first_batch: int = 1,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ) -> None:
        for name in (seat, partner_seat):
            if name not in spec.agents:
                raise EngineError(f"seat {name!r} is not one of the game's agents {list(spec.agents)}.")
        if spec.bots:
            raise EngineError(
                f"a P2P game has two human seats and no bots; the spec has bots for {sorted(spec.bots)}."
            )
        super().__init__(spec, game_id=game_id, first_batch=first_batch)
        missing = [name for name in ROLLBACK_METHODS if not callable(getattr(self.env, name, None))]
        if missing:
            raise EnvContractError(
                f"The env from {spec.env_factory!r} lacks {', '.join(missing)}: a P2P game rolls the env "
                "back and compares hashes of its full state. Add them and check them with "
                "igym_core.testing.check_state_hash."
            )
        self.human = self.agent_of_name[seat]
        self.seat = seat
        self.partner_seat = partner_seat
        self.partner = self.agent_of_name[partner_seat]
        self._actions = [spec.default_action, *spec.action_mapping.values()]
        self._action_keys = {json.dumps(a, sort_keys=True) for a in self._actions}
        self._partner_bot: SeatBot | None = None
        self._records: dict[int, dict[str, Any]] = {}
        self._t_first: dict[int, float | None] = {}
        self._pending_hashes = []
        self.engine = RollbackEngine(
            self,
            game_id=game_id,
            seat=seat,
            partner_seat=partner_seat,
            authority=authority,
            default_input=[spec.default_action, 0, []],
            input_delay=input_delay,
            window=window,
            hash_every=hash_every,
            silent_notice_ms=silent_notice_ms,
            lost_after_ms=lost_after_ms,
            max_state_bytes=max_state_bytes,
        )
        #: States larger than one packet travel in chunks (split_packet); this puts them together.
        self._reassembler = Reassembler(game_id, max_state_bytes + MAX_PACKET_BYTES)

    # --- the contract's properties ---------------------------------------------------------------
    @property
    def input_delay(self) -> int:
        """The input delay of the current episode (frames)."""
        return self.engine.input_delay

    @property
    def rtt_ms(self) -> float | None:
        """The median measured round trip to the partner (None before the first)."""
        return self.engine.rtt_ms

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: frames, rollbacks, depth_histogram, max_depth, waits, packets
        sent/received/refused, desyncs detected/repaired, resimulated_frames."""
        return self.engine.stats

    # --- episodes ------------------------------------------------------------------------------
    def start_episode(  # type: ignore[override]
        self,
        episode: int,
        seed: int,
        *,
        max_steps: int | None = None,
        fps: int | None = None,
        next_batch: int | None = None,
    ) -> dict[str, Any]:
        """Reset for ``episode`` with the server's ``seed`` (both pages get the same); returns the
        first frame (a keyframe)."""
        frame = super().start_episode(episode, seed, max_steps=max_steps, next_batch=next_batch)
        self._pending_hashes = []
        self._records = {}
        self._t_first = {}
        limit = self.max_steps
        if limit is None:
            limit = int(getattr(self.env, "max_steps", 0) or 0) or 100_000
        self.engine.start_episode(int(episode), max_steps=int(limit), fps=int(fps or self.spec.fps))
        self._pending_hashes.append([0, str(self.engine.confirmed_hash(0))])
        return frame

    def handshake(self, now_ms: float) -> list[bytes]:
        """Pings before the first episode (they measure the round trip for ``input_delay="auto"``)."""
        return self.engine.handshake(now_ms)

    # --- the tick ------------------------------------------------------------------------------
    def _local_input(self) -> list[Any]:
        if not self.playing:
            return [self.spec.default_action, 0, []]
        if self._held_mode:
            held = self.held
        elif self.presses:
            held = (self.presses.popleft(),)
        else:
            held = ()
        action, mapped = self.table.lookup(held)
        return [plain(action), 1 if mapped else 0, list(held)]

    def tick(self, now_ms: float) -> dict[str, Any]:
        """One tick (see the module docstring). ``frame`` is the frame message to draw, or None when
        nothing changed; ``done`` once the episode's last frame is confirmed."""
        result = self.engine.tick(now_ms, self._local_input())
        for confirmed in self.engine.take_confirmed():
            self._confirmed(confirmed)
        frame = None
        if result["advanced"] or result["rolled_back"]:
            self.step_count = self.engine.frame
            self.ticks += 1
            frame = self._frame(self.ticks, t_ms=now_ms, keyframe=False)
        if self.engine.done and self.playing:
            self.playing = False
            self.end_reason = self.engine.end_reason
        elif self.engine.stopped and self.playing:
            self.playing = False
            self.end_reason = "partner_left"
        return {
            "frame": frame,
            "send": [chunk for packet in result["send"] for chunk in split_packet(packet, self.game_id)],
            "events": result["events"],
            "period_scale": result["period_scale"],
            "waiting": result["waiting"],
            "done": self.engine.done or self.engine.stopped,
        }

    def receive(self, data: bytes, now_ms: float) -> list[dict[str, Any]]:
        """A packet from the partner (bytes as sent). Returns events (may be empty)."""
        try:
            whole = self._reassembler.feed(data)
        except Refused as refused:
            return self.engine.refuse(refused.reason, now_ms)
        if whole is None:
            return []  # a chunk of a state still incomplete
        return self.engine.receive(whole, now_ms)

    def _confirmed(self, confirmed: Any) -> None:
        record = self._records.pop(confirmed.frame)
        predicted = confirmed.predicted
        record["p2p"] = {
            "rollbacks": confirmed.resimulated,
            "predicted": None if predicted is None else predicted[0],
        }
        record["t_ms"] = self._t_first.pop(confirmed.frame, record["t_ms"])
        self._pending.append(record)
        if confirmed.hash is not None:
            self._pending_hashes.append([confirmed.frame, confirmed.hash])
        for frame in [f for f in self._records if f < confirmed.frame]:
            del self._records[frame]

    # --- the Simulation the engine drives --------------------------------------------------------
    def save(self) -> Any:
        bot = self._partner_bot
        return (
            self.env.get_state(),
            dict(self.returns),
            self.obs,
            self.last_rewards,
            None if bot is None else bot.last_action,
        )

    def load(self, state: Any) -> None:
        env_state, returns, obs, rewards, bot_action = state
        self.env.set_state(env_state)
        self.returns = dict(returns)
        self.obs = obs
        self.last_rewards = rewards
        if self._partner_bot is not None:
            self._partner_bot.last_action = bot_action

    def export_state(self, state: Any) -> Any:
        env_state, returns, obs, rewards, bot_action = state
        return {
            "env": env_state,
            "returns": {self.agent_names[a]: v for a, v in returns.items()},
            "obs": {self.agent_names[a]: plain(v) for a, v in obs.items()},
            "rewards": {self.agent_names.get(a, str(a)): plain(v) for a, v in rewards.items()},
            "bot": bot_action,
        }

    def import_state(self, data: Any) -> Any:
        if not isinstance(data, Mapping) or not {"env", "returns", "obs", "rewards"} <= set(data):
            raise ValueError("a P2P state is a table with env, returns, obs and rewards")
        of = self.agent_of_name
        returns = {of[name]: float(v) for name, v in dict(data["returns"]).items() if name in of}
        obs = {of[name]: v for name, v in dict(data["obs"]).items() if name in of}
        rewards = {of[name]: v for name, v in dict(data["rewards"]).items() if name in of}
        return (data["env"], returns, obs, rewards, data.get("bot"))

    def state_hash(self) -> str:
        return str(self.env.state_hash())

    def check_input(self, value: Any) -> bool:
        if not (isinstance(value, list) and len(value) == 3):
            return False
        action, mapped, keys = value
        if mapped not in (0, 1) or isinstance(mapped, bool):
            return False
        if not isinstance(keys, list) or len(keys) > _MAX_KEYS:
            return False
        if not all(isinstance(k, str) and len(k) <= _MAX_KEY_LENGTH for k in keys):
            return False
        try:
            return json.dumps(action, sort_keys=True) in self._action_keys
        except (TypeError, ValueError):
            return False

    def advance(self, frame: int, inputs: Mapping[str, Any], now_ms: float | None) -> str | None:
        env = self.env
        actions: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        keys: dict[str, list[str]] = {}
        for agent in env.agents:
            name = self.agent_names[agent]
            value = inputs.get(name)
            if value is None and agent == self.partner and self._partner_bot is not None:
                # The seat rules every runtime uses (igym_core.builtin.seat_actions): steps made so far.
                actions[agent], sources[agent] = self._partner_bot.act(
                    frame - 1, self.obs.get(agent), self.spec.default_action
                )
                continue
            if value is None:
                value = [self.spec.default_action, 0, []]
            actions[agent] = value[0]
            sources[agent] = "human" if value[1] else "default"
            keys[name] = list(value[2])
        observations_before = self.obs
        obs, rewards, terminations, truncations, infos = env.step(actions)
        record: dict[str, Any] = {
            "step": frame,
            "t_ms": now_ms,
            "actions": {},
            "sources": {},
            "keys": {},
            "rewards": {},
            "terminated": {},
            "truncated": {},
            "infos": {} if infos else None,
        }
        returns = self.returns
        for agent, action in actions.items():
            name = self.agent_names[agent]
            reward = plain(rewards.get(agent, 0.0))
            returns[agent] = returns.get(agent, 0.0) + (reward or 0.0)
            record["actions"][name] = plain(action)
            record["sources"][name] = sources[agent]
            if name in keys:
                record["keys"][name] = keys[name]
            record["rewards"][name] = reward
            record["terminated"][name] = bool(terminations.get(agent, False))
            record["truncated"][name] = bool(truncations.get(agent, False))
            if infos:
                record["infos"][name] = plain(infos.get(agent))
        if self.spec.record_observations:
            record["observations"] = {self.agent_names[a]: plain(observations_before.get(a)) for a in actions}
        self._records[frame] = record
        if now_ms is not None:
            self._t_first.setdefault(frame, now_ms)
        self.last_rewards = rewards
        self.obs = obs
        done = all(terminations.get(a, False) or truncations.get(a, False) for a in actions)
        if done or not env.agents:
            return "terminated" if any(terminations.get(a, False) for a in actions) else "truncated"
        if frame >= self.engine.max_steps:
            return "max_steps"
        return None

    # --- batches -------------------------------------------------------------------------------
    def episode_done(self) -> dict[str, Any]:
        """The ``episode_done`` message, once the episode's last frame is confirmed (or the partner
        left and this page stopped)."""
        message = super().episode_done()
        message["steps"] = self.engine.confirmed
        return message

    # --- the partner left, reloads -------------------------------------------------------------
    def partner_left(self, policy_spec: BotSpec | Mapping[str, Any] | None) -> None:
        """The partner is gone. With a policy (``BotSpec`` or its JSON) this page plays on alone,
        the partner's seat played by the policy from the last confirmed frame on; with None the
        episode stops (``done`` with end reason ``partner_left``)."""
        if policy_spec is None:
            self.engine.partner_left(bot=False)
            return
        spec = policy_spec
        if not isinstance(spec, BotSpec):
            spec = BotSpec.from_json(spec, f"the partner policy of {self.partner_seat!r}")
        self._partner_bot = _bot(spec, self.partner_seat, self.spec.action_spaces.get(self.partner_seat))
        self.engine.partner_left(bot=True)

    def snapshot(self) -> bytes:
        """The confirmed state and known inputs for the partner's reloaded page (see :meth:`resume`)."""
        return self.engine.snapshot()

    def snapshot_packets(self) -> list[bytes]:
        """:meth:`snapshot` as it goes on the wire: one packet, or its chunks when larger than one
        packet (the partner's :meth:`resume_from` puts them together)."""
        return split_packet(self.engine.snapshot(), self.game_id)

    def resume_from(self, data: bytes) -> dict[str, Any] | None:
        """A reloaded page's packet from its partner, while it waits to resume: the partner's
        snapshot resumes this page (returns the keyframe to draw, as :meth:`resume`); any other
        packet (the partner's inputs may arrive before its snapshot) returns None and is dropped.
        A snapshot in chunks resumes the page at its last chunk."""
        try:
            data = self._reassembler.feed(data)
        except Refused:
            return None
        if data is None:
            return None
        try:
            packet = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(packet, dict) or packet.get("k") != "snap":
            return None
        return self.resume(data)

    def continue_batches_at(self, number: int) -> None:
        """Number the next ``step_batch`` ``number`` (a reloaded page goes on with the server's count
        of its old page's batches)."""
        self._next_batch = int(number)

    def resume(self, snapshot: bytes) -> dict[str, Any]:
        """Continue from the partner's :meth:`snapshot` (this page reloaded); returns a keyframe."""
        self.engine.resume(snapshot)
        self.episode = self.engine.episode
        self.max_steps = self.engine.max_steps
        self.step_count = self.engine.frame
        self.playing = True
        self.end_reason = None
        self._records = {}
        self._t_first = {}
        self.presses.clear()
        frame = self._frame(self.ticks, t_ms=None, keyframe=True)
        return frame

    def stop(self, reason: str) -> None:
        """End the episode now (the server ended the game)."""
        super().stop(reason)
        self.engine.partner_left(bot=False)
