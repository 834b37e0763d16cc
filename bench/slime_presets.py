"""Win rates of igym_slime's strength presets against the scripted bot and against random play.

Each preset of ``igym_slime.bots.SLIME_PRESETS`` plays ``--games`` games against the scripted bot
(``ScriptedPolicy()``) and as many against random play (a freshly seeded random policy each game),
in ``igym_slime.arena`` (sides swapped every game; every game and every bot seeded from ``--seed``,
the same games for every preset, so a run gives the same table again). The bots play as a game
scene plays them (``BotPlayer``: the installed policy loader, ``act_every``, ``between``). Prints
a Markdown table with 95% Wilson intervals; nothing is pass/fail. Run it after changing a preset,
the model or the scripted bot, and put the table in ``igym_slime.bots``' docstring and the
plugin's README.

    uv run python bench/slime_presets.py [--games 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from datetime import UTC, datetime

from igym_slime.arena import BotPlayer, RandomOpponent, Record, play_games
from igym_slime.bots import SLIME_PRESETS, ScriptedPolicy, slime_bot


def wilson(wins: int, games: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a win rate."""
    if games == 0:
        return 0.0, 1.0
    p = wins / games
    centre = (p + z * z / (2 * games)) / (1 + z * z / games)
    half = z * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games)) / (1 + z * z / games)
    return max(0.0, centre - half), min(1.0, centre + half)


def cell(record: Record) -> str:
    low, high = wilson(record.wins, record.games)
    return (
        f"{record.win_rate:.0%} ({record.wins}-{record.losses}-{record.draws}; {low:.0%}–{high:.0%}), "
        f"points {record.points_for}:{record.points_against}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=100, help="games per preset and opponent (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; {args.games} games per cell, seed {args.seed}"
    )
    print("| preset | vs scripted: win rate (W-L-D; 95% interval), points | vs random | seconds |")
    print("| --- | --- | --- | --- |")
    for name in SLIME_PRESETS:
        # Every preset plays the same seeded games (serves, random opponents): a paired comparison.
        started = time.perf_counter()
        player = BotPlayer(slime_bot(name))
        scripted = play_games(player, ScriptedPolicy(), games=args.games, seed=args.seed * 10 + 1)
        random_play = play_games(
            player, RandomOpponent(seed=args.seed * 10 + 2), games=args.games, seed=args.seed * 10 + 2
        )
        print(
            f"| {name} | {cell(scripted)} | {cell(random_play)} | {time.perf_counter() - started:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
