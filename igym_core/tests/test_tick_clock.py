"""The server runtime against a virtual clock: when ticks run, which tick an input lands on, what a
slow tick does to the ones after it, and that equal seeds and inputs record equal step data.

The real app, coordinator, runtime, games and JSONL recorder are used; only time is virtual: the
tick scheduler is given a clock with the event loop's ``time()`` and ``call_at()``, and the test
decides when time passes (also inside a step, to play a slow env).
"""

from __future__ import annotations

import functools
import heapq
import math
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene
from igym_core.runtime.interface import Seat
from igym_core.testing import make_test_app, read_records

FPS = 30
PERIOD = 1 / FPS
START = 1000.0


class VirtualClock:
    """The two methods of an event loop the tick scheduler uses, on a clock the test moves."""

    class Handle:
        def __init__(self, callback: Any, args: tuple[Any, ...]) -> None:
            self.callback, self.args, self.cancelled = callback, args, False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.now = START
        self._queue: list[tuple[float, int, VirtualClock.Handle]] = []
        self._seq = 0
        self.fired: list[tuple[float, float, Any]] = []  # (when due, when run, callback)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> VirtualClock.Handle:
        handle = self.Handle(callback, args)
        heapq.heappush(self._queue, (when, self._seq, handle))
        self._seq += 1
        return handle

    def spend(self, seconds: float) -> None:
        """Time passing inside a callback (a slow step)."""
        self.now += seconds

    def run_until(self, until: float) -> None:
        while self._queue and self._queue[0][0] <= until:
            when, _, handle = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self.now = max(self.now, when)
            self.fired.append((when, self.now, handle.callback))
            handle.callback(*handle.args)
        self.now = max(self.now, until)


CLOCK: VirtualClock | None = None
SLOW_STEPS: dict[int, float] = {}  # env step number -> seconds it takes (virtual)


class Counter:
    """Two agents; each action adds to the agent's counter. Some steps take virtual time."""

    metadata = {"name": "counter"}

    def __init__(self) -> None:
        self.possible_agents = ["human", "bot"]
        self.agents: list[str] = []
        self.counts = {"human": 0, "bot": 0}
        self.steps = 0

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(5)

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(10_000)

    def reset(self, seed: int | None = None, options: Any = None):
        self.agents = list(self.possible_agents)
        self.counts = {"human": 0, "bot": 0}
        return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        self.steps += 1
        if CLOCK is not None and self.steps in SLOW_STEPS:
            CLOCK.spend(SLOW_STEPS[self.steps])
        for agent, action in actions.items():
            self.counts[agent] += int(action)
        obs = {a: self.counts["human"] * 100 + self.counts["bot"] for a in self.agents}
        rewards = {a: float(actions[a]) for a in self.agents}
        flags = {a: False for a in self.agents}
        return obs, rewards, flags, dict(flags), {a: {} for a in self.agents}

    def render(self) -> list:
        return []


def _scene(**overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="count",
        env_factory=Counter,
        human_seat="human",
        policies={"bot": "random"},
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1, "ArrowUp+ArrowLeft": 3},
        default_action=0,
        fps=FPS,
        num_episodes=2,
        max_steps=12,
        countdown_s=0,
        abandon_after_s=3600,
    )
    options.update(overrides)
    return GymScene(**options)


class FrameCollector:
    """Stands in for a participant's socket: takes every frame (players count as connected)."""

    connection_id = 1

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def offer(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True


class Run:
    """One app with virtual time; games seated directly on the real runtime."""

    def __init__(self, tmp_path: Path, *, groups: int, scene: GymScene | None = None) -> None:
        global CLOCK
        CLOCK = self.clock = VirtualClock()
        self.scene = scene or _scene()
        experiment = Experiment(
            experiment_id="clock_test", seed=11, scenes=(self.scene, EndScene(scene_id="end"))
        )
        self.data_dir = tmp_path
        self.app = make_test_app(experiment, tmp_path, tick_groups=groups)
        self.study = self.app.state.study

    async def start_games(self, players: list[str], *, real_time: bool = False) -> list[Any]:
        coordinator = self.study.games
        runtime = await coordinator._runtime("server")
        if not real_time:
            runtime.scheduler.time_source = self.clock
        self.sockets = {pid: FrameCollector() for pid in players}
        coordinator.frame_sink = self.sockets.get
        prepared = self.study._prepared[id(self.scene)]
        games = []
        for index, pid in enumerate(players):
            seats = [Seat(agent="human", participant_id=pid), Seat(agent="bot", policy="random")]
            game = runtime.create_game(
                game_id=f"game-{index}", scene=self.scene, prepared=prepared, instance=0, seats=seats
            )
            game.player_ready(pid)
            games.append(game)
        return games

    async def records(self, kind: str) -> list[dict[str, Any]]:
        await self.study.recorder.flush()
        return read_records(self.data_dir, "clock_test", kind)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset_globals():
    SLOW_STEPS.clear()
    yield
    global CLOCK
    CLOCK = None
    SLOW_STEPS.clear()


def _ticks_of(clock: VirtualClock) -> list[tuple[float, float]]:
    return [(due, ran) for due, ran, callback in clock.fired if getattr(callback, "__name__", "") == "_run"]


@pytest.mark.anyio
async def test_groups_tick_at_absolute_phase_shifted_deadlines(tmp_path):
    run = Run(tmp_path, groups=4)
    await run.start_games(["p0", "p1", "p2", "p3"])
    run.clock.run_until(START + 0.5)
    ticks = _ticks_of(run.clock)
    epoch = ticks[0][0]
    # Four groups, each on its own quarter of the period; every tick exactly on its deadline.
    offsets = sorted({round(((due - epoch) % PERIOD) / PERIOD, 6) % 1.0 for due, _ in ticks})
    assert offsets == [0.0, 0.25, 0.5, 0.75]
    for due, ran in ticks:
        k = (due - epoch) / (PERIOD / 4)
        assert abs(k - round(k)) < 1e-6 and ran == due
    assert [due for due, _ in ticks] == sorted(due for due, _ in ticks)
    runtime = run.study.games._runtimes["server"]
    assert runtime.scheduler.stats.ticks_skipped == 0


@pytest.mark.anyio
async def test_each_input_applies_from_the_next_tick_of_its_game(tmp_path):
    run = Run(tmp_path, groups=1)
    (game,) = await run.start_games(["p0"])
    # Inputs between ticks, as a browser's arrive: (time after start, keys held from then on).
    script = [(0.05, ["ArrowUp"]), (0.12, ["ArrowUp", "ArrowLeft"]), (0.2, []), (0.27, ["ArrowLeft"])]
    for offset, keys in script:
        run.clock.call_at(START + offset, functools.partial(game.player_input, "p0", keys=keys, press=None))
    run.clock.run_until(START + 2.0)
    tick_times = {game_tick: due for game_tick, (due, _) in enumerate(_ticks_of(run.clock), start=1)}
    rows = [r for r in await run.records("steps") if r["agent"] == "human"]
    assert len(rows) == 24  # two episodes of max_steps
    action_of = {(): 0, ("ArrowUp",): 4, ("ArrowLeft", "ArrowUp"): 3, ("ArrowLeft",): 1}
    for row in rows:
        at = tick_times[row["tick"]]
        held: list[str] = []
        for offset, keys in script:
            if START + offset <= at:
                held = keys
        assert sorted(row["keys_held"]) == sorted(held), (row["tick"], at - START)
        assert row["action"] == action_of[tuple(sorted(held))]
        assert row["action_source"] == ("human" if held else "default")


@pytest.mark.anyio
async def test_a_slow_tick_delays_only_itself_and_missed_deadlines_are_skipped(tmp_path):
    SLOW_STEPS[5] = 2.5 * PERIOD  # the 5th step of the first game takes two and a half periods
    run = Run(tmp_path, groups=1)
    await run.start_games(["p0"])
    run.clock.run_until(START + 1.0)
    ticks = _ticks_of(run.clock)
    epoch = ticks[0][0]
    at = [(ran - epoch) / PERIOD for _, ran in ticks]  # when each tick ran, in periods
    late = next(i for i, t in enumerate(at) if abs(t - round(t)) > 1e-6)
    slow = late - 1  # the tick whose step took 2.5 periods
    # Until the slow tick, one tick per deadline. Deadlines slow+1 and slow+2 pass during it: the
    # first is skipped, the second runs as soon as the slow tick ends (half a period late), and
    # from then on ticks are back on the same grid, without drift.
    assert at[:late] == pytest.approx(list(range(late)))
    assert at[late] == pytest.approx(slow + 2.5)
    assert at[late + 1 :] == pytest.approx([slow + 3 + n for n in range(len(at) - late - 1)])
    stats = run.study.games._runtimes["server"].scheduler.stats
    assert stats.ticks_skipped == 1
    episodes = await run.records("episodes")
    assert episodes[0]["steps"] == 12  # a skipped deadline is not a lost step: the game just ran later


@pytest.mark.anyio
async def test_same_seeds_and_inputs_record_identical_steps(tmp_path):
    def scripted(run: Run, games: list[Any]) -> None:
        for index, game in enumerate(games):
            for n, keys in enumerate([["ArrowUp"], [], ["ArrowLeft"], ["ArrowUp", "ArrowLeft"], []] * 3):
                at = START + 0.011 + n * 0.047 + index * 0.003
                run.clock.call_at(
                    at, functools.partial(game.player_input, f"p{index}", keys=keys, press=None)
                )

    results = []
    for attempt in range(2):
        run = Run(tmp_path / f"run{attempt}", groups=2)
        games = await run.start_games(["p0", "p1"])
        scripted(run, games)
        run.clock.run_until(START + 2.0)
        steps = await run.records("steps")
        results.append(
            [
                {k: v for k, v in row.items() if k not in ("timestamp", "t_server_ms", "run_id")}
                for row in steps
            ]
        )
    assert len(results[0]) == 2 * 2 * 24  # two games, two agents, two episodes of 12 steps
    assert results[0] == results[1]
    bot_actions = [r["action"] for r in results[0] if r["agent"] == "bot"]
    assert len(set(bot_actions)) > 1  # the random bot is seeded, not constant
    assert not math.isnan(sum(r["reward"] for r in results[0]))


class BusyCounter(Counter):
    """A Counter whose step burns about 2 ms of this thread's CPU."""

    def step(self, actions: dict[str, Any]):
        import time

        until = time.thread_time() + 0.002
        while time.thread_time() < until:
            pass
        return super().step(actions)


@pytest.mark.anyio
async def test_the_envs_cpu_time_is_sampled_into_the_stats(tmp_path):
    run = Run(tmp_path, groups=1, scene=_scene(env_factory=BusyCounter, num_episodes=2, max_steps=16))
    (game,) = await run.start_games(["p0"])
    run.clock.run_until(START + 2.0)
    stats = run.study.games._runtimes["server"].stats()
    assert stats["env_ticks"] == 32  # every step, wall time
    # CPU time at one step in eight: the steps whose tick number, shifted by the game's phase, is
    # a multiple of eight.
    ticks = [row["tick"] for row in await run.records("steps") if row["agent"] == "human"]
    sampled = sum(1 for tick in ticks if (tick + game._cpu_phase) % 8 == 0)
    assert stats["env_cpu_samples"] == sampled and sampled in (4, 5)
    assert 1.9 <= stats["env_cpu_s"] / sampled * 1000 < 6  # ms per sampled step
    assert stats["env_cpu_us_per_tick"] == pytest.approx(
        stats["env_cpu_s"] / sampled * 1e6, abs=0.5
    )  # both rounded


class SlowDrawCounter(Counter):
    """A Counter whose drawing takes 4 ms of virtual time and whose steps note when they ran."""

    steps_at: list[tuple[int, float]] = []  # (id of the env, virtual time of the step)

    def step(self, actions: dict[str, Any]):
        assert CLOCK is not None
        self.steps_at.append((id(self), CLOCK.now))
        return super().step(actions)

    def render(self) -> list:
        assert CLOCK is not None
        CLOCK.spend(0.004)
        return []


@pytest.mark.anyio
async def test_a_games_step_does_not_wait_for_the_other_games_drawing(tmp_path):
    # Three games in one group, each drawing for 4 ms: all three step at the deadline, then all
    # three draw and send. (Stepping and drawing game by game made the third step 8 ms late.)
    SlowDrawCounter.steps_at = []
    scene = _scene(env_factory=SlowDrawCounter, num_episodes=1, max_steps=10)
    run = Run(tmp_path, groups=1, scene=scene)
    await run.start_games(["p0", "p1", "p2"])
    run.clock.run_until(START + 1.0)
    ticks = _ticks_of(run.clock)
    assert len({env for env, _ in SlowDrawCounter.steps_at}) == 3
    playing = [due for due, _ in ticks if any(at == due for _, at in SlowDrawCounter.steps_at)]
    assert len(playing) == 10  # every step of the episode ran exactly at its tick's deadline
    steps_at = [at for _, at in SlowDrawCounter.steps_at]
    assert steps_at == [due for due in playing for _ in range(3)]
    stats = run.study.games._runtimes["server"].scheduler.stats
    assert stats.frames_sent >= 3 * 10 and stats.frames_dropped == 0
    assert len([r for r in await run.records("steps") if r["agent"] == "human"]) == 3 * 10


class BreakingCounter(Counter):
    """A Counter that, once told it ``breaks``, raises in ``broken_in`` (step or render) at its
    4th step."""

    broken_in = "step"
    breaks = False

    def step(self, actions: dict[str, Any]):
        if self.breaks and self.broken_in == "step" and self.steps == 3:
            raise RuntimeError("the env broke in step")
        return super().step(actions)

    def render(self) -> list:
        if self.breaks and self.broken_in == "render" and self.steps == 4:
            raise RuntimeError("the env broke in render")
        return []


@pytest.mark.parametrize("broken_in", ["step", "render"])
@pytest.mark.anyio
async def test_a_game_that_breaks_mid_tick_ends_and_the_others_of_its_group_play_on(tmp_path, broken_in):
    BreakingCounter.broken_in = broken_in
    scene = _scene(env_factory=BreakingCounter, num_episodes=1, max_steps=10)
    run = Run(tmp_path, groups=1, scene=scene)
    games = await run.start_games(["p0", "p1", "p2"])
    games[1].raw_env.breaks = True  # the middle game of the group
    run.clock.run_until(START + 1.0)
    ended = {r["game_id"]: r["reason"] for r in await run.records("games") if r["event"] == "ended"}
    assert ended == {"game-0": "completed", "game-1": "error", "game-2": "completed"}
    human_steps = [r for r in await run.records("steps") if r["agent"] == "human"]
    by_game = {g.info.game_id: sum(1 for r in human_steps if r["game_id"] == g.info.game_id) for g in games}
    # The broken game's 4th step never happened (step) or happened but was never drawn (render).
    assert by_game == {"game-0": 10, "game-1": 3 if broken_in == "step" else 4, "game-2": 10}
    messages = {pid: [msgpack.unpackb(frame) for frame in sink.frames] for pid, sink in run.sockets.items()}
    steps_sent = {pid: [m["step"] for m in sent if m["type"] == "frame"] for pid, sent in messages.items()}
    assert set(range(1, 11)) <= set(steps_sent["p0"]) and set(range(1, 11)) <= set(steps_sent["p2"])
    assert max(steps_sent["p1"]) == 3  # nothing of the broken step or after it reached the player


@pytest.mark.anyio
async def test_games_sample_the_envs_cpu_time_at_different_ticks(tmp_path):
    run = Run(tmp_path, groups=1)
    games = await run.start_games([f"p{n}" for n in range(8)])
    assert sorted(game._cpu_phase for game in games) == list(range(8))


class BusySocket:
    """A socket that takes ``per_instant`` messages per instant of the clock, then is busy until
    time moves on (as a real socket's buffer drains between ticks)."""

    connection_id = 1

    def __init__(self, clock: VirtualClock, per_instant: int) -> None:
        self.clock = clock
        self.per_instant = per_instant
        self.taken: list[tuple[float, str]] = []  # (instant, message type)

    def offer(self, frame: bytes) -> bool:
        if sum(1 for at, _ in self.taken[-self.per_instant :] if at == self.clock.now) >= self.per_instant:
            return False
        self.taken.append((self.clock.now, msgpack.unpackb(frame)["type"]))
        return True


@pytest.mark.parametrize("per_instant", [1, 2])
@pytest.mark.anyio
async def test_a_round_trip_probe_never_costs_a_player_a_frame(tmp_path, per_instant):
    # A probe is due at every tick (the interval is a nanosecond of real time); the socket takes one
    # or two messages per tick. The tick's frame must always get in first.
    steps = 30
    scene = _scene(rtt_interval_s=1e-9, num_episodes=1, max_steps=steps)
    run = Run(tmp_path, groups=1, scene=scene)
    await run.start_games(["p0"])
    sink = BusySocket(run.clock, per_instant)
    run.study.games.frame_sink = {"p0": sink}.get
    run.clock.run_until(START + 1.5)
    stats = run.study.games._runtimes["server"].stats()
    assert stats["frames_dropped"] == 0
    by_instant: dict[float, list[str]] = {}
    for at, kind in sink.taken:
        by_instant.setdefault(at, []).append(kind)
    playing = [kinds for kinds in by_instant.values() if kinds[0] == "frame"]
    assert len(playing) >= steps  # a frame at every tick of the episode
    probes = sum(kinds.count("rtt_probe") for kinds in by_instant.values())
    if per_instant == 1:
        assert probes == 0  # the probes found the socket busy with the frame: they were the ones left out
    else:
        assert probes >= steps - 1  # one after the frame at every tick (not at the episode's last)
        assert all(kinds in (["frame"], ["frame", "rtt_probe"]) for kinds in playing), by_instant
    (episode,) = await run.records("episodes")
    assert episode["frames_dropped"] == {"p0": 0}


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")])
@pytest.mark.anyio
async def test_on_uvloop_no_tick_runs_before_its_deadline(tmp_path):
    # uvloop keeps its timers in whole milliseconds and rounds delays, so a timer set for a
    # deadline used to fire up to about a millisecond before it (a quarter of all ticks, measured):
    # the runtime rounds uvloop delays up and re-arms a timer that still fires early.
    import asyncio

    import uvloop

    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    run = Run(tmp_path, groups=4, scene=_scene(num_episodes=1, max_steps=40))
    await run.start_games(["p0", "p1", "p2", "p3"], real_time=True)
    stats = run.study.games._runtimes["server"].scheduler.stats
    for _ in range(300):
        if stats.ticks >= 4 * 40:
            break
        await asyncio.sleep(0.01)
    assert stats.ticks >= 4 * 40
    assert stats.lateness.count == stats.ticks
    assert stats.lateness.min_ms is not None and stats.lateness.min_ms >= 0, stats.lateness.min_ms


class SleepyCounter(Counter):
    """A Counter whose step takes 10 ms of wall time: 30 % of a tick at 30 fps."""

    def step(self, actions: dict[str, Any]):
        import time

        time.sleep(0.01)
        return super().step(actions)


@pytest.mark.parametrize(("env", "warned"), [(SleepyCounter, True), (Counter, False)])
@pytest.mark.anyio
async def test_a_game_whose_env_takes_over_a_quarter_of_the_tick_is_logged_once(tmp_path, env, warned):
    from structlog.testing import capture_logs

    run = Run(tmp_path, groups=1, scene=_scene(env_factory=env, num_episodes=2, max_steps=80))
    with capture_logs() as logs:
        await run.start_games(["p0"])
        run.clock.run_until(START + 10.0)
    slow = [entry for entry in logs if entry["event"] == "env_slow"]
    assert (await run.records("episodes"))[-1]["steps"] == 80  # 160 steps played
    if warned:
        (entry,) = slow  # after the first 100 steps, and only then
        assert entry["game_id"] == "game-0" and 10 <= entry["step_render_ms"] < 40
        assert entry["period_ms"] == pytest.approx(33.3)
    else:
        assert slow == []


@pytest.mark.anyio
async def test_key_presses_during_a_countdown_are_not_played_when_the_episode_starts(tmp_path):
    run = Run(tmp_path, groups=1, scene=_scene(input_mode="press", countdown_s=0.3, num_episodes=1))
    (game,) = await run.start_games(["p0"])
    run.clock.run_until(START + 0.1)
    assert game.phase == "countdown"  # (its end is on the real clock)
    for _ in range(3):
        game.player_input("p0", keys=None, press=["ArrowUp"])
    time.sleep(0.35)
    run.clock.run_until(START + 0.2)
    assert game.phase == "playing"
    run.clock.call_at(START + 0.5, functools.partial(game.player_input, "p0", keys=None, press=["ArrowLeft"]))
    run.clock.run_until(START + 1.5)
    rows = [r for r in await run.records("steps") if r["agent"] == "human"]
    assert len(rows) == 12
    assert [r["action"] for r in rows if r["action_source"] == "human"] == [1]  # the ArrowLeft only
    assert all(r["action"] == 0 for r in rows if r["action_source"] != "human")


@pytest.mark.anyio
async def test_a_failing_hud_is_logged_once_per_game_and_the_game_plays_on(tmp_path):
    from structlog.testing import capture_logs

    def broken_hud(view: Any) -> str:
        raise ZeroDivisionError("hud")

    run = Run(tmp_path, groups=1, scene=_scene(hud=broken_hud, num_episodes=1))
    with capture_logs() as logs:
        await run.start_games(["p0", "p1"])
        run.clock.run_until(START + 1.0)
    failures = [entry for entry in logs if entry["event"] == "hud_failed"]
    assert sorted(entry["game_id"] for entry in failures) == ["game-0", "game-1"]
    episodes = await run.records("episodes")
    assert [e["steps"] for e in episodes] == [12, 12]


class BreaksAtStep5(Counter):
    def step(self, actions: dict[str, Any]):
        if self.steps == 4:
            raise RuntimeError("the env broke")
        return super().step(actions)


class BreaksAtSecondReset(Counter):
    resets = 0  # per env

    def reset(self, seed: int | None = None, options: Any = None):
        self.resets += 1
        if self.resets == 2:
            raise RuntimeError("the env broke")
        return super().reset(seed=seed, options=options)


@pytest.mark.anyio
@pytest.mark.parametrize(("env", "steps_of_broken"), [(BreaksAtStep5, [4]), (BreaksAtSecondReset, [12, 0])])
async def test_an_env_that_breaks_leaves_a_record_of_its_episode_with_the_seed(
    tmp_path, env, steps_of_broken
):
    run = Run(tmp_path, groups=1, scene=_scene(env_factory=env, num_episodes=3))
    await run.start_games(["p0"])
    run.clock.run_until(START + 2.0)
    episodes = await run.records("episodes")
    assert [e["steps"] for e in episodes] == steps_of_broken
    assert [e["end_reason"] for e in episodes][-1] == "error"
    assert all(isinstance(e["seed"], int) for e in episodes) and len({e["seed"] for e in episodes}) == len(
        episodes
    )
    [ended] = [g for g in await run.records("games") if g["event"] == "ended"]
    assert ended["reason"] == "error" and ended["episodes_played"] == len(episodes)


@pytest.mark.anyio
async def test_a_bot_action_outside_the_action_space_ends_the_game_with_an_error_not_in_the_data(tmp_path):
    from structlog.testing import capture_logs

    run = Run(tmp_path, groups=1, scene=_scene(policies={"bot": lambda obs: 99}))
    with capture_logs() as logs:
        await run.start_games(["p0"])
        run.clock.run_until(START + 1.0)
    assert not [r for r in await run.records("steps") if r["agent"] == "bot" and r["action"] == 99]
    [ended] = [g for g in await run.records("games") if g["event"] == "ended"]
    assert ended["reason"] == "error"
    [failure] = [entry for entry in logs if entry["event"] == "game_tick_failed"]
    assert "'bot' chose 99, which is not in the seat's action space Discrete(5)" in failure["error"]


@pytest.mark.anyio
async def test_a_game_nobody_is_connected_to_pauses_resumes_on_return_and_ends_abandoned(tmp_path):
    run = Run(tmp_path, groups=1, scene=_scene(max_steps=None, num_episodes=1, abandon_after_s=10))
    (game,) = await run.start_games(["p0"])
    runtime = run.study.games._runtimes["server"]

    def human_steps(rows: list[dict[str, Any]]) -> int:
        return sum(1 for r in rows if r["agent"] == "human")

    run.clock.run_until(START + 1.0)
    played = human_steps(await run.records("steps"))
    assert 29 <= played <= 31

    socket = run.sockets.pop("p0")  # the page is gone
    run.clock.run_until(START + 6.0)
    after_leaving = human_steps(await run.records("steps"))
    assert after_leaving - played <= 1  # at most the tick that noticed: no step since
    assert game.phase == "paused" and game.ticker is None
    ticks_paused = runtime.scheduler.stats.ticks
    run.clock.run_until(START + 8.0)
    assert runtime.scheduler.stats.ticks == ticks_paused  # not even ticked: no CPU

    run.sockets["p0"] = socket  # back (a reload) before abandon_after_s
    game.player_connected("p0")
    game.player_ready("p0")
    assert game.phase == "playing"  # countdown_s=0: straight back in
    run.clock.run_until(START + 9.0)
    resumed = human_steps(await run.records("steps"))
    assert 29 <= resumed - after_leaving <= 31
    assert not game.ended

    run.sockets.pop("p0")  # gone for good: the game ends abandon_after_s after the pause began
    run.clock.run_until(START + 18.9)
    assert not game.ended and game.phase == "paused"
    run.clock.run_until(START + 19.1)
    assert game.ended
    assert human_steps(await run.records("steps")) - resumed <= 1
    (episode,) = await run.records("episodes")
    assert episode["end_reason"] == "abandoned" and episode["pauses"] == 2
    assert episode["paused_ms"] == pytest.approx(7000 + 10000, abs=100)  # both pauses (virtual s)
    games = await run.records("games")
    assert [g["event"] for g in games] == ["started", "paused", "resumed", "paused", "ended"]
    assert games[-1]["reason"] == "abandoned"
    assert games[2]["paused_ms"] == pytest.approx(7000, abs=100)


@pytest.mark.anyio
async def test_a_paused_episode_resumes_after_a_countdown_and_keeps_its_number(tmp_path):
    run = Run(tmp_path, groups=1, scene=_scene(max_steps=None, num_episodes=2, countdown_s=0.2))
    (game,) = await run.start_games(["p0"])
    run.clock.run_until(START + 0.1)
    time.sleep(0.25)  # the countdown runs on the real clock
    run.clock.run_until(START + 1.0)
    assert game.phase == "playing" and game.episode == 1
    socket = run.sockets.pop("p0")
    run.clock.run_until(START + 2.0)
    assert game.phase == "paused"
    run.sockets["p0"] = socket
    game.player_connected("p0")
    status = game.status_message("p0")
    assert status["phase"] == "countdown" and 0 < status["countdown_ms"] <= 200
    assert status["episode"] == 1 and game.step > 0  # the same episode goes on, not a new one
