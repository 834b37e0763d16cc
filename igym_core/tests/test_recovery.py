"""Completing the records of games a server stopped, over random histories of games, kills and
graceful stops (hypothesis), with the real JSONL sink writing and reading the records."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.envs import resolve_callable
from igym_core.runtime import records
from igym_core.session.recovery import recover_interrupted_games

EXPERIMENT = "recovery_test"
IDS = records.game_ids(game_id="g", scene_id="s", instance=0, participant_ids=["p"])
#: An episode row's values, to compare a recovered row's columns with ``records.episode_row``'s.
EPISODE: dict[str, Any] = resolve_callable(
    f"{Path(__file__).resolve().parent / 'game_envs.py'}:episode_sample", what="test episode row"
)()
NUM_EPISODES = 3


def _seed(scene_id: str, instance: int, participant_ids: tuple[str, ...], episode: int) -> int:
    return hash((scene_id, instance, participant_ids, episode)) % 10_000


class History:
    """Records as one participant's games write them, through a real sink, across server runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sink = JsonlSink(JsonlSinkConfig(), directory)
        self.games = 0
        self.expected_from = 1  # the episode the participant should resume at

    def write(self, kind: str, row: dict[str, Any]) -> None:
        self.sink.write(kind, {"experiment_id": EXPERIMENT, "timestamp": "2026-12-05T00:00:00.000Z", **row})

    def play(self, episodes_done: int, steps_into_next: int, end: str) -> str:
        """A game from ``expected_from``: ``episodes_done`` whole episodes, then ``steps_into_next``
        steps of the next, then ``end``: ``completed``, ``kill`` or ``stop``."""
        self.games += 1
        game_id = f"g{self.games}"
        ids = {"game_id": game_id, "scene_id": "s", "instance": 0, "participant_ids": ["p"]}
        first = self.expected_from
        started = {**ids, "event": "started", "num_episodes": NUM_EPISODES, "fps": 30}
        if first > 1:
            started["continues"] = {"game_id": f"g{self.games - 1}", "from_episode": first}
        self.write("games", started)
        last = min(NUM_EPISODES, first + episodes_done - 1)
        for episode in range(first, last + 1):
            for step in range(1, 4):
                self.write("steps", {**ids, "episode": episode, "step": step, "agent": "a", "reward": 1.0})
            self.write("episodes", {**ids, "episode": episode, "end_reason": "max_steps", "steps": 3})
        if last == NUM_EPISODES or end == "completed":
            self.write("games", {**ids, "event": "ended", "reason": "completed"})
            self.expected_from = None  # type: ignore[assignment]
            return game_id
        for step in range(1, steps_into_next + 1):
            self.write("steps", {**ids, "episode": last + 1, "step": step, "agent": "a", "reward": 0.5})
        if end == "stop":
            self.write("episodes", {**ids, "episode": last + 1, "end_reason": "game_stopped"})
            self.write("games", {**ids, "event": "ended", "reason": "server_stopped"})
        self.expected_from = last + 1
        return game_id

    def restart(self) -> tuple[list[Any], list[tuple[str, dict[str, Any]]]]:
        asyncio.run(self.sink.flush(durable=True))
        written: list[tuple[str, dict[str, Any]]] = []
        found = recover_interrupted_games(
            self.sink.read,
            experiment_id=EXPERIMENT,
            episode_seed=_seed,
            record=lambda kind, row: (written.append((kind, dict(row))), self.write(kind, dict(row))),
        )
        asyncio.run(self.sink.flush(durable=True))
        return found, written


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 3), st.sampled_from(["kill", "stop"])),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_every_stopped_game_is_completed_once_and_the_player_resumes_at_the_right_episode(
    plays: list[tuple[int, int, str]], returns: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp))
        for (episodes_done, steps_into_next, end), plays_again in zip(plays, returns, strict=False):
            game_id = history.play(episodes_done, steps_into_next, end)
            if history.expected_from is None:
                break  # the game was played to its end
            found, written = history.restart()
            # The killed game got its ended record (and its episode row if a step was on disk);
            # a stopped one already had them. Nothing else is written.
            if end == "kill":
                kinds = [kind for kind, _ in written]
                assert kinds == (["episodes", "games"] if steps_into_next else ["games"])
                row = written[-1][1]
                assert (row["game_id"], row["event"], row["reason"]) == (game_id, "ended", "server_restart")
                ended = records.game_ended_row(IDS, reason="server_restart", episodes_played=1)
                assert list(row) == list(ended)  # the builder's columns, in its order
                if steps_into_next:
                    episode_row = written[0][1]
                    assert episode_row["episode"] == history.expected_from
                    assert episode_row["steps"] == steps_into_next
                    assert episode_row["returns"] == {"a": 0.5 * steps_into_next}
                    assert episode_row["seed"] == _seed("s", 0, ("p",), history.expected_from)
                    # The columns of every runtime's episodes rows (records.episode_row), in order.
                    assert list(episode_row) == list(records.episode_row(IDS, **EPISODE))
            else:
                assert written == []
            # The latest game the server stopped says where the participant resumes.
            assert found[-1].game_id == game_id and found[-1].from_episode == history.expected_from
            # A second start writes nothing and finds the same.
            again, rewritten = history.restart()
            assert rewritten == [] and again == found
            if not plays_again:
                break
        ended = [r for r in history.sink.read("games") if r["event"] == "ended"]
        assert len({r["game_id"] for r in ended}) == len(ended)  # each game ended once
