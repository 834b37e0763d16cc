"""A turn-based runtime: a complete runtime plugin in one file (the example of docs/runtimes.md).

The env steps on the server, but only when the participant sends a ``turn`` message with an
action (no ticks, no frames): the runtime declares that message type, the server decodes and
validates it like its own messages and hands it to the game. Bots play their seats from the
scene's ``policies``. It takes one option, ``max_turns`` (an episode ends after that many turns),
and refuses at start a scene whose human seat's actions are not whole numbers.

Install it like any plugin (``IGYM_PLUGINS=turn_runtime`` with this folder on the path, or
``extra=[turn_runtime]`` in Python) and choose it with ``GymScene(runtime="turns", ...)``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import attrs

from igym_core import hookimpl
from igym_core.errors import ProtocolError
from igym_core.protocol.messages import game_id_field, int_field
from igym_core.protocol.server_messages import GameStatus
from igym_core.runtime import records
from igym_core.runtime.interface import (
    Continuation,
    GameHandle,
    GameInfo,
    PreparedGame,
    Runtime,
    RuntimeCheck,
    RuntimeMessage,
    Seat,
)
from igym_core.scenes.interface import SceneConfig
from igym_core.settings import Settings


@attrs.frozen
class Turn(RuntimeMessage):
    """``{type: "turn", game_id, action}``: the participant's action for the next step."""

    type: ClassVar[str] = "turn"
    action: int

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Self:
        action = int_field(data, "action")
        if not 0 <= action < 1024:
            raise ProtocolError("bad_message", "'action' must be an integer from 0 to 1023")
        return cls(game_id=game_id_field(data), action=action)


@attrs.frozen(kw_only=True)
class TurnOptions:
    """``GymScene(runtime="turns", runtime_options={"max_turns": 20})``."""

    max_turns: int = attrs.field(default=100, validator=[attrs.validators.ge(1), attrs.validators.le(10_000)])
    """An episode ends after this many turns (``end_reason="max_turns"``)."""


class TurnRuntime(Runtime):
    kind = "turns"
    messages = (Turn,)
    options_type = TurnOptions

    @classmethod
    def check_scene(cls, scene: SceneConfig, prepared: PreparedGame, settings: Settings) -> RuntimeCheck:
        problems = []
        if len(prepared.human_seats) != 1:
            problems.append(
                f"the 'turns' runtime plays one human seat; the scene has {len(prepared.human_seats)}. "
                "Give it one human_seat."
            )
        env, _raw = prepared.make_env()
        try:
            for seat in prepared.human_seats:
                space = env.action_space(seat)
                if not hasattr(space, "n"):
                    problems.append(
                        f"the 'turns' runtime needs whole-number actions; seat {seat!r} has {space}. "
                        "Use an env with a Discrete action space for this seat, or runtime='server'."
                    )
        finally:
            env.close()
        options: TurnOptions = prepared.runtime_options
        return RuntimeCheck(problems=problems, notes=[f"turns: at most {options.max_turns} turns an episode"])

    def create_game(
        self,
        *,
        game_id: str,
        scene: SceneConfig,
        prepared: PreparedGame,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> GameHandle:
        info = GameInfo(
            game_id=game_id,
            scene_id=prepared.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        return TurnGame(self, info, prepared, first_episode=continues.from_episode if continues else 1)


class TurnGame(GameHandle):
    def __init__(
        self, runtime: TurnRuntime, info: GameInfo, prepared: PreparedGame, first_episode: int
    ) -> None:
        self.host = runtime.host
        self.info = info
        self.prepared = prepared
        self.options: TurnOptions = prepared.runtime_options
        self.env, _raw = prepared.make_env()
        self.human = next(seat.agent for seat in info.seats if seat.is_human)
        self.bots = {
            seat.agent: prepared.load_policy(seat.agent, self.env) for seat in info.seats if not seat.is_human
        }
        self.ids = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=info.participant_ids,
        )
        self.episode = first_episode - 1
        self.step = 0
        self.ended = False
        self._next_episode()

    def _next_episode(self) -> None:
        self.episode += 1
        self.step = 0
        seed = self.prepared.episode_seed(self.info.instance, self.info.participant_ids, self.episode)
        self.observations, _infos = self.env.reset(seed=seed)

    # --- GameHandle ---------------------------------------------------------------------------------
    def status_message(self, participant_id: str) -> dict[str, Any]:
        return GameStatus(
            game_id=self.info.game_id,
            phase="ended" if self.ended else "playing",
            episode=self.episode,
            num_episodes=self.prepared.num_episodes,
            seat=self.human,
            message="",
        ).wire()

    def player_ready(self, participant_id: str) -> None:
        pass

    def player_connected(self, participant_id: str) -> None:
        pass

    def player_input(self, participant_id: str, *, keys: Any, press: Any) -> None:
        raise ProtocolError("bad_message", "This game takes 'turn' messages, not keys.")

    def player_message(self, participant_id: str, message: RuntimeMessage) -> None:
        if not isinstance(message, Turn) or self.ended:
            return super().player_message(participant_id, message)
        space = self.env.action_space(self.human)
        if not space.contains(message.action):
            raise ProtocolError("bad_message", f"action {message.action} is not in {space}")
        actions = {self.human: message.action}
        for agent, policy in self.bots.items():
            actions[agent] = policy.act(self.observations[agent])
        self.observations, rewards, terminated, truncated, _infos = self.env.step(actions)
        self.step += 1
        now_ms = round(time.time() * 1000, 1)
        for agent, action in actions.items():
            human = agent == self.human
            self.host.record(
                records.STEPS,
                records.step_row(
                    self.ids,
                    episode=self.episode,
                    step=self.step,
                    tick=self.step,
                    agent=str(agent),
                    participant_id=participant_id if human else None,
                    action=action,
                    action_source="human" if human else "bot",
                    keys_held=None,
                    reward=rewards.get(agent, 0.0),
                    terminated=terminated.get(agent, False),
                    truncated=truncated.get(agent, False),
                    info=None,
                    t_server_ms=now_ms,
                ),
            )
        over = self.step >= self.options.max_turns or any(terminated.values()) or any(truncated.values())
        if over:
            if self.episode >= self.prepared.num_episodes:
                self.ended = True
                self.env.close()
                self.host.game_ended(self.info.game_id, "completed")
            else:
                self._next_episode()

    async def stop(self, reason: str) -> None:
        self.ended = True
        self.env.close()


@hookimpl
def igym_register_runtimes() -> list[type[Runtime]]:
    return [TurnRuntime]
