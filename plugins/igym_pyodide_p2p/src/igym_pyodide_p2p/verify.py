"""``igym verify data/<experiment>``: re-run browser-played episodes on the server and compare.

A ``pyodide`` game's steps were made in the participant's browser, so its data is only as honest as
that page. Every episode's seed comes from the server and every step's actions are recorded, so
the server can play each episode again: reset the env with the recorded seed, step it with the
recorded actions, and compare what it gets with what the page reported: each agent's reward,
``terminated`` and ``truncated``, and the env's state hash wherever the page sent one
(``state_hashes``). A step the data lacks, a step recorded twice, or an episode whose recorded step
count does not match its steps is a difference too.

The experiment comes from the run's snapshot (``snapshots/<run_id>.json``, written at every start:
the experiment as it ran and the folder its relative files are in), or from ``--experiment``.

The report names, for every episode that differs, the game, the episode, its seed, the first step
that differs and what differed there (expected: the server's re-run; found: the data). An episode
is not followed past its first differing step (from there on its states differ anyway). The exit
code is 1 if any episode differs, 0 (with a summary) if all match. Reads JSONL data (the built-in
sink); it writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TextIO

import attrs

from igym_core.commands import Command
from igym_core.config.converter import exception_text, structure_or_raise
from igym_core.errors import ConfigError, IgymError

__all__ = ["BROWSER_RUNTIMES", "Difference", "EpisodeResult", "VerifyCommand", "VerifyReport", "verify_data"]

#: Runtimes whose steps are made outside the server (their games are verified).
BROWSER_RUNTIMES = frozenset({"pyodide", "pyodide_p2p"})
_REWARD_TOLERANCE = 1e-9


@attrs.frozen
class Difference:
    """One thing the data says that the server's re-run does not."""

    step: int
    what: str
    expected: Any
    """What the server's re-run gives (None where the data has something the re-run has not)."""
    found: Any
    """What the data holds."""

    def text(self) -> str:
        return f"step {self.step}: {self.what}: expected {_show(self.expected)}, found {_show(self.found)}"


@attrs.frozen
class EpisodeResult:
    game_id: str
    scene_id: str
    episode: int
    seed: int | None
    steps: int
    """Steps re-run and compared."""
    hashes: int
    """State hashes compared."""
    differences: tuple[Difference, ...] = ()

    @property
    def matches(self) -> bool:
        return not self.differences


@attrs.frozen
class VerifyReport:
    games: int
    episodes: tuple[EpisodeResult, ...]
    p2p_disagreements: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    """Peer-to-peer games whose two pages' records differ: game id → field (``reward``,
    ``action``, ``state_hash``, …, ``unconfirmed``) → rows of ``p2p_disagreements``."""

    @property
    def differing(self) -> tuple[EpisodeResult, ...]:
        return tuple(e for e in self.episodes if not e.matches)


class VerifyCommand(Command):
    """``igym verify data/<experiment>``: check browser-run episodes against a re-run on the server."""

    kind: ClassVar[str] = "verify"
    help: ClassVar[str] = (
        "re-run browser-played episodes from their seeds and actions and compare (igym verify data/x)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("data", help="the experiment's data folder, e.g. data/my_study")
        parser.add_argument(
            "--experiment",
            default=None,
            help="the experiment to re-run with (module:attribute or a file); default: each run's snapshot",
        )
        parser.add_argument("--game", action="append", help="only this game id (repeatable)")

    def run(self, args: argparse.Namespace) -> int:
        from igym_core.cli import _plugins, _settings

        settings = _settings(args)
        plugins = _plugins(settings, quiet=True)
        report = verify_data(
            Path(args.data), plugins=plugins, settings=settings, experiment=args.experiment, games=args.game
        )
        return print_report(report, Path(args.data), out=sys.stdout)


def print_report(report: VerifyReport, data_dir: Path, *, out: TextIO) -> int:
    """Print ``report``; the exit code: 1 if an episode differs, else 0."""
    for result in report.differing:
        first = result.differences[0]
        out.write(
            f"DIFFERS game {result.game_id} (scene {result.scene_id}) episode {result.episode} "
            f"(seed {result.seed}): {first.text()}\n"
        )
        for more in result.differences[1:]:
            out.write(f"        {more.text()}\n")
    for game_id, fields in sorted(report.p2p_disagreements.items()):
        counts = ", ".join(f"{field} {n}" for field, n in sorted(fields.items()))
        out.write(
            f"NOTE game {game_id}: its two pages' records differ (p2p_disagreements: {counts}); the "
            "steps hold the copy that reached the server first\n"
        )
    episodes = len(report.episodes)
    steps = sum(e.steps for e in report.episodes)
    hashes = sum(e.hashes for e in report.episodes)
    games = report.games
    what = f"{episodes} browser-run episode{'s' * (episodes != 1)} of {games} game{'s' * (games != 1)}"
    if report.differing:
        out.write(
            f"igym verify {data_dir}: {len(report.differing)} of {what} differ from a re-run on the server.\n"
        )
        return 1
    out.write(
        f"igym verify {data_dir}: all {what} match a re-run on the server "
        f"({steps} steps, {hashes} state hashes compared).\n"
    )
    return 0


def verify_data(
    data_dir: Path,
    *,
    plugins: Any,
    settings: Any,
    experiment: str | None = None,
    games: Iterable[str] | None = None,
) -> VerifyReport:
    """Re-run every browser-run episode recorded in ``data_dir`` and compare (see the module docstring)."""
    from igym_core.builtin.sink_jsonl import read_jsonl

    if not (data_dir / "games.jsonl").is_file():
        raise IgymError(
            f"{data_dir} has no games.jsonl: expected an experiment's data folder (data/<experiment_id>) "
            "written by igym run with the JSONL sink. Give the folder that holds games.jsonl and steps.jsonl."
        )
    only = set(games) if games else None
    started: dict[str, Mapping[str, Any]] = {}
    for row in read_jsonl(data_dir / "games.jsonl"):
        browser_run = row.get("event") == "started" and row.get("runtime") in BROWSER_RUNTIMES
        if browser_run and (only is None or row.get("game_id") in only):
            started[row["game_id"]] = row
    episodes: dict[tuple[str, int], Mapping[str, Any]] = {}
    for row in _rows(data_dir, "episodes"):
        if row.get("game_id") in started:
            episodes[(row["game_id"], row["episode"])] = row
    steps: dict[tuple[str, int], dict[int, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in _rows(data_dir, "steps"):
        if row.get("game_id") in started:
            steps[(row["game_id"], row["episode"])][row["step"]].append(row)
    hashes: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    for row in _rows(data_dir, "state_hashes"):
        if row.get("game_id") in started:
            hashes[(row["game_id"], row["episode"])][row["step"]] = row["state_hash"]
    scenes = _Scenes(data_dir, plugins, settings, experiment)
    results = []
    for key in sorted(set(episodes) | set(steps), key=lambda k: (k[0], k[1])):
        game = started[key[0]]
        prepared = scenes.get(game)
        results.append(
            _verify_episode(
                prepared, game, key[1], episodes.get(key), steps.get(key, {}), hashes.get(key, {})
            )
        )
    disagreements: dict[str, Counter[str]] = defaultdict(Counter)
    for row in _rows(data_dir, "p2p_disagreements"):
        if row.get("game_id") in started:
            disagreements[row["game_id"]][str(row.get("field"))] += int(row.get("count") or 1)
    return VerifyReport(
        games=len(started),
        episodes=tuple(results),
        p2p_disagreements={game: dict(fields) for game, fields in disagreements.items()},
    )


def _rows(data_dir: Path, record_type: str) -> Iterable[dict[str, Any]]:
    from igym_core.builtin.sink_jsonl import read_jsonl

    path = data_dir / f"{record_type}.jsonl"
    return read_jsonl(path) if path.is_file() else ()


class _Scenes:
    """Prepared game scenes by (run, scene id), from each run's snapshot or the given experiment."""

    def __init__(self, data_dir: Path, plugins: Any, settings: Any, experiment: str | None) -> None:
        self.data_dir = data_dir
        self.plugins = plugins
        self.settings = settings
        self.experiment = experiment
        self._plans: dict[str | None, dict[str, Any]] = {}

    def get(self, game: Mapping[str, Any]) -> Any:
        run_id = None if self.experiment else game.get("run_id")
        plan = self._plans.get(run_id)
        if plan is None:
            plan = self._plans[run_id] = self._prepare(run_id)
        scene_id = game.get("scene_id")
        if scene_id not in plan:
            raise IgymError(
                f"game {game.get('game_id')} was played in scene {scene_id!r}, which the experiment "
                f"{'given with --experiment' if self.experiment else f'of run {run_id}'} does not have; "
                f"its game scenes: {sorted(plan)}. Give the experiment that ran with --experiment."
            )
        return plan[scene_id]

    def _prepare(self, run_id: str | None) -> dict[str, Any]:
        from igym_core.config.converter import make_converter
        from igym_core.config.experiment import Experiment
        from igym_core.config.loader import LoadedExperiment, load_experiment, validate_experiment
        from igym_core.serving import validate_for_serving

        converter = make_converter(self.plugins.registry)
        if run_id is None:
            loaded = load_experiment(self.experiment or "", converter)
        else:
            path = self.data_dir / "snapshots" / f"{run_id}.json"
            try:
                snapshot = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise IgymError(
                    f"cannot read the snapshot of run {run_id} ({path}): {exception_text(exc)}. "
                    "Give the experiment that ran with --experiment."
                ) from exc
            title = f"The experiment in {path} cannot be loaded"
            try:
                experiment = structure_or_raise(converter, snapshot["experiment"], Experiment, title=title)
            except ConfigError as exc:
                raise ConfigError(
                    [*exc.problems, "Give the experiment that ran with --experiment instead."], title=title
                ) from exc
            loaded = LoadedExperiment(experiment, Path(snapshot.get("base_dir") or "."), str(path))
            validate_experiment(loaded, converter)
        plan = validate_for_serving(loaded, self.plugins, self.settings)
        from igym_core.scenes.stager import iter_scenes

        return {
            scene.scene_id: plan.prepared[id(scene)]
            for scene, _path in iter_scenes(plan.experiment.scenes)
            if id(scene) in plan.prepared and scene.game_runtime() is not None
        }


def _verify_episode(
    prepared: Any,
    game: Mapping[str, Any],
    episode: int,
    summary: Mapping[str, Any] | None,
    steps: Mapping[int, list[Mapping[str, Any]]],
    hashes: Mapping[int, str],
) -> EpisodeResult:
    game_id = game["game_id"]
    scene_id = game.get("scene_id", "")
    seed = summary.get("seed") if summary else None
    result = functools.partial(EpisodeResult, game_id=game_id, scene_id=scene_id, episode=episode, seed=seed)
    if summary is None or not isinstance(seed, int):
        return result(
            steps=0,
            hashes=0,
            differences=(Difference(0, "episode record (its seed)", "recorded", "missing"),),
        )
    recorded_last = max(steps, default=0)
    last = max(recorded_last, int(summary.get("steps") or 0))
    differences: list[Difference] = []
    env, raw = prepared.make_env()
    compared_steps = 0
    compared_hashes = 0
    try:
        env.reset(seed=seed)
        hasher = _hasher(env, raw)
        if 0 in hashes and hasher is not None:
            compared_hashes += 1
            _compare_hash(differences, 0, hasher, hashes[0])
        for n in range(1, last + 1):
            if differences:
                break
            rows = steps.get(n)
            if not rows:
                differences.append(Difference(n, "step", "recorded", "missing"))
                break
            by_agent: dict[str, Mapping[str, Any]] = {}
            for row in rows:
                name = str(row.get("agent"))
                if name in by_agent:
                    differences.append(Difference(n, f"rows of {name!r}", 1, 2))
                by_agent[name] = row
            if differences:
                break
            if not env.agents:
                differences.append(Difference(n, "step", "none (the episode was over)", "a step"))
                break
            actions = {}
            for name, row in by_agent.items():
                agent = prepared.agent_by_name.get(name)
                if agent is None or agent not in env.agents:
                    differences.append(Difference(n, "agent", sorted(map(str, env.agents)), name))
                    break
                actions[agent] = _action(row.get("action"), env.action_space(agent))
            if differences:
                break
            try:
                _obs, rewards, terminations, truncations, _infos = env.step(actions)
            except Exception as exc:
                differences.append(
                    Difference(
                        n, "env.step with the recorded actions", "a step", f"an error: {exception_text(exc)}"
                    )
                )
                break
            compared_steps += 1
            for agent in env.possible_agents if hasattr(env, "possible_agents") else actions:
                if agent in actions or agent in rewards:
                    name = str(agent)
                    row = by_agent.get(name)
                    if row is None:
                        differences.append(Difference(n, f"row of {name!r}", "a row", "none"))
                        continue
                    expected = _number(rewards.get(agent, 0.0))
                    found = row.get("reward")
                    if not _same_number(expected, found):
                        differences.append(Difference(n, f"reward of {name!r}", expected, found))
                    for flag, values in (("terminated", terminations), ("truncated", truncations)):
                        if bool(values.get(agent, False)) != row.get(flag):
                            differences.append(
                                Difference(
                                    n, f"{flag} of {name!r}", bool(values.get(agent, False)), row.get(flag)
                                )
                            )
            if n in hashes and hasher is not None:
                compared_hashes += 1
                _compare_hash(differences, n, hasher, hashes[n])
        recorded = summary.get("steps")
        if not differences and isinstance(recorded, int) and recorded != recorded_last:
            differences.append(
                Difference(recorded_last, "steps in the episode record", recorded_last, recorded)
            )
    finally:
        with contextlib.suppress(Exception):
            env.close()
    return result(steps=compared_steps, hashes=compared_hashes, differences=tuple(differences))


def _hasher(env: Any, raw: Any) -> Any:
    for candidate in (env, raw):
        method = getattr(candidate, "state_hash", None)
        if callable(method):
            return method
    return None


def _compare_hash(differences: list[Difference], step: int, hasher: Any, found: str) -> None:
    expected = str(hasher())
    if expected != found:
        differences.append(Difference(step, "state hash", expected, found))


def _action(value: Any, space: Any) -> Any:
    if isinstance(value, list):
        import numpy as np

        dtype = getattr(space, "dtype", None)
        return np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
    return value


def _number(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value


def _same_number(expected: Any, found: Any) -> bool:
    if isinstance(found, bool) or not isinstance(found, int | float):
        return expected == found
    if not isinstance(expected, int | float):
        return False
    return math.isclose(expected, found, rel_tol=_REWARD_TOLERANCE, abs_tol=_REWARD_TOLERANCE)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value in ("recorded", "missing", "none", "a step", "a row") else repr(value)
    return repr(value)
