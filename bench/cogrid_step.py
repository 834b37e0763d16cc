"""Where an Overcooked (CoGrid) step's time goes: the adapter with each observation kind, the raw
CoGrid env, the planner bot and the renderer. Prints one line per part (µs per step, median of
several rounds) and a JSON summary; nothing is pass/fail.

    uv run python bench/cogrid_step.py [--layout cramped_room] [--steps 600] [--rounds 5]

Run it on a quiet machine (`uptime`): on 2 shared cores the spread between rounds is large, so the
minimum is printed next to the median.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time

from igym_cogrid.bots import PlannerPolicy
from igym_cogrid.env import AGENTS, LAYOUTS, make_env
from igym_cogrid.render import draw


def _rounds(run, rounds: int, steps: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(steps)
        times.append((time.perf_counter() - started) / steps * 1e6)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="cramped_room", choices=sorted(LAYOUTS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}

    def adapter(observations: str):
        env = make_env(layout=args.layout, max_steps=10**6, observations=observations)
        env.reset(seed=0)
        bots = [PlannerPolicy(), PlannerPolicy()]
        obs = env.reset(seed=0)[0]
        # A realistic action stream (two planners), recorded once so that only step() is timed.
        actions = []
        replay = make_env(layout=args.layout, max_steps=10**6)
        o = replay.reset(seed=0)[0]
        for _ in range(args.steps):
            a = {agent: bot.act(o[agent]) for agent, bot in zip(AGENTS, bots, strict=True)}
            actions.append(a)
            o = replay.step(a)[0]
        del obs

        def run(n: int) -> None:
            env.reset(seed=0)
            for a in actions[:n]:
                env.step(a)

        return run, actions

    run_compact, actions = adapter("compact")
    run_cogrid, _ = adapter("cogrid")
    for name, run in (
        ("adapter, compact observations", run_compact),
        ("adapter, cogrid observations", run_cogrid),
    ):
        median, best = _rounds(run, args.rounds, args.steps)
        results[name] = {"median_us": round(median, 1), "min_us": round(best, 1)}

    from cogrid.envs import registry

    raw = registry.make(LAYOUTS[args.layout])
    config = copy.deepcopy(raw.config)
    config["features"] = ["agent_dir"]
    factory = registry.ENVIRONMENT_REGISTRY[LAYOUTS[args.layout]]
    minimal = factory.func(config=config, agent_class=factory.keywords["agent_class"])
    raw_actions = [{i: a[agent] for i, agent in enumerate(AGENTS)} for a in actions]
    for name, env in (
        ("cogrid env, its 892-float features", raw),
        ("cogrid env, a 4-float feature", minimal),
    ):
        env.config["max_steps"] = 10**6

        def run(n: int, env=env) -> None:
            env.reset(seed=0)
            for a in raw_actions[:n]:
                env.step(a)

        median, best = _rounds(run, args.rounds, args.steps)
        results[name] = {"median_us": round(median, 1), "min_us": round(best, 1)}

    env = make_env(layout=args.layout, max_steps=10**6)
    observations = [env.reset(seed=0)[0]]
    for a in actions:
        observations.append(env.step(a)[0])
    bot = PlannerPolicy()

    def run_bot(n: int) -> None:
        for o in observations[:n]:
            bot.act(o["chef_0"])

    env.reset(seed=0)

    def run_draw(n: int) -> None:
        env.reset(seed=0)
        for a in actions[:n]:
            env.step(a)
            draw(env)

    results["planner bot, one act"] = dict(
        zip(
            ("median_us", "min_us"),
            (round(v, 1) for v in _rounds(run_bot, args.rounds, args.steps)),
            strict=True,
        )
    )
    step_and_draw = _rounds(run_draw, args.rounds, args.steps)
    results["adapter step + draw"] = {
        "median_us": round(step_and_draw[0], 1),
        "min_us": round(step_and_draw[1], 1),
    }
    for name, figures in results.items():
        print(f"{name:40s} median {figures['median_us']:8.1f} µs   min {figures['min_us']:8.1f} µs")
    print(
        json.dumps(
            {"layout": args.layout, "steps": args.steps, "load": os.getloadavg()[0], "results": results}
        )
    )


if __name__ == "__main__":
    main()
