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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="cramped_room", choices=sorted(LAYOUTS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    def adapter(observations: str, observed=None):
        env = make_env(
            layout=args.layout, max_steps=10**6, observations=observations, observed_agents=observed
        )
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

    runners = {}
    run_compact, actions = adapter("compact")
    runners["adapter, compact observations"] = run_compact
    runners["adapter, compact observations, chef_1"] = adapter("compact", ("chef_1",))[0]
    runners["adapter, cogrid observations, both"] = adapter("cogrid")[0]
    runners["adapter, cogrid observations, chef_1"] = adapter("cogrid", ("chef_1",))[0]

    from cogrid.envs import registry

    raw_actions = [{i: a[agent] for i, agent in enumerate(AGENTS)} for a in actions]
    factory = registry.ENVIRONMENT_REGISTRY[LAYOUTS[args.layout]]
    for name, features in (
        ("cogrid env, its 892-float features", None),
        ("cogrid env, a 4-float feature", ["agent_dir"]),
    ):
        config = copy.deepcopy(factory.keywords["config"])
        config["max_steps"] = 10**6
        if features is not None:
            config["features"] = features
        env = factory.func(config=config, agent_class=factory.keywords["agent_class"])

        def run(n: int, env=env) -> None:
            env.reset(seed=0)
            for a in raw_actions[:n]:
                env.step(a)

        runners[name] = run

    env = make_env(layout=args.layout, max_steps=10**6)
    observations = [env.reset(seed=0)[0]]
    for a in actions:
        observations.append(env.step(a)[0])
    bot = PlannerPolicy()

    def run_bot(n: int) -> None:
        for o in observations[:n]:
            bot.act(o["chef_0"])

    def run_draw(n: int) -> None:
        env.reset(seed=0)
        for a in actions[:n]:
            env.step(a)
            draw(env)

    runners["planner bot, one act"] = run_bot
    runners["adapter step + draw"] = run_draw
    # Rounds interleave the variants, so that a busy moment of a shared machine hits them all.
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - started) / args.steps * 1e6)
    results = {
        name: {"median_us": round(statistics.median(v), 1), "min_us": round(min(v), 1)}
        for name, v in times.items()
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
