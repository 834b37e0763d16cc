"""Cold and warm load of the in-browser runtime and the slime env, in headless Chromium, from igym.

    uv run --frozen python bench/pyodide_load.py --repeats 3

Starts ``igym run`` with a Slime Volleyball study whose game runs in the browser
(``plugins/igym_pyodide_p2p/tests/studies/packages_slime.py``), then, ``--repeats`` times, opens a
fresh Chromium profile and loads the runtime twice in it, as the runtime's loader does (Pyodide from
igym, micropip, the scene's wheels by name from igym's package index, importing and stepping the env
and rendering it): the first load is cold (empty HTTP cache), the second warm (every content-hashed
file from the cache). Chromium reaches nothing but loopback.

Prints one line per load, then one JSON line with the medians of each stage: ``runtime_ms``
(``loadPyodide``), ``micropip_ms``, ``packages_ms`` (installing the wheels), ``env_ms`` (importing the
env and render function, 300 steps and one render) and ``total_ms``, cold and warm, plus the bytes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "plugins" / "igym_pyodide_p2p" / "tests" / "studies" / "packages_slime.py"
STAGES = ("runtime_ms", "micropip_ms", "packages_ms", "env_ms", "total_ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="fresh profiles (each: one cold, one warm load)"
    )
    parser.add_argument("--steps", type=int, default=300, help="env steps after loading")
    args = parser.parse_args(argv)

    from igym_core.testing import LiveServer
    from igym_pyodide_p2p.testing import load_scene_in_chromium

    loads: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with (
        tempfile.TemporaryDirectory(prefix="igym-bench-pyodide-") as tmp,
        LiveServer(f"{STUDY}:experiment", Path(tmp) / "data", cwd=STUDY.parent) as server,
    ):
        url = server.url
        for repeat in range(args.repeats):
            profile = Path(tmp) / f"profile-{repeat}"
            outcome = load_scene_in_chromium(url, "slime", runs=2, steps=args.steps, profile_dir=profile)
            if outcome["errors"]:
                print(f"page errors: {outcome['errors']}", file=sys.stderr)
                return 1
            for kind, run in zip(("cold", "warm"), outcome["runs"], strict=True):
                loads[kind].append({stage: run[stage] for stage in STAGES})
                sizes = (run["pyodide_bytes"], run["wheel_bytes"])
                stages = ", ".join(f"{stage[:-3]} {run[stage]:.0f} ms" for stage in STAGES)
                print(
                    f"{kind} #{repeat + 1}: {stages} (Pyodide {sizes[0] / 1e6:.1f} MB, "
                    f"wheels {sizes[1] / 1e3:.0f} kB)",
                    flush=True,
                )
    summary: dict[str, object] = {
        f"{kind}_{stage}": round(statistics.median(load[stage] for load in loads[kind]), 1)
        for kind in ("cold", "warm")
        for stage in STAGES
    }
    summary.update(repeats=args.repeats, pyodide_bytes=sizes[0], wheel_bytes=sizes[1])
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
