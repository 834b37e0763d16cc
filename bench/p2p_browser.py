"""Two headless Chromium pages play P2P Slime Volleyball (``runtime="pyodide_p2p"``) through the
seeded fault hook, at 60 ms RTT with 10 ms jitter and 2 % loss, and at 150 ms RTT.

    uv run --frozen python bench/p2p_browser.py [--route direct|relay] [--runs 1] [--compare-page-relay]

Each run is a real ``igym run`` and two pages matched in its waiting room, playing one 20-second
episode (600 frames at 30 fps) of ``plugins/igym_pyodide_p2p/tests/studies/slime_p2p_pages.py``,
driven by the browser tests' driver (``tests/p2p_pages.py``: keys held and pressed on both pages).
The fault hook (``window.__igymP2PFaults``) delays every packet by half the RTT (± the jitter,
uniform) and drops the loss share, on each page's sends. ``--route direct`` (default when the
machine can make a network namespace) runs the server and Chromium inside ``unshare -n`` with the
DataChannel (the packets then go worker to worker); ``relay`` sends them through the server.

Prints, per scenario and page: fps (the engine's frames over the episode's time; the target is 30),
rollbacks per second, rollback depth p50/p99 (frames), the input delay, the measured RTT, desyncs
detected/repaired, the prediction-window waits, and the cost of one resimulated frame in Pyodide
(the time the worker's engine spent in rollbacks, loading the state and resimulating, divided by the
frames resimulated, and measured before the episode on the same worker: 8-frame rollbacks, 100
rounds after 100 to warm up); then one JSON line per scenario. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "plugins" / "igym_pyodide_p2p" / "tests"
DRIVER = TESTS / "p2p_pages.py"
EPISODE_S = 20.0

#: name → (one-way delay, jitter, loss) for each page's sends: RTT = 2 × delay.
SCENARIOS: dict[str, tuple[float, float, float]] = {
    "rtt60_jitter10_loss2": (30.0, 10.0, 0.02),
    "rtt150_jitter10_loss2": (75.0, 10.0, 0.02),
}


def _percentile(histogram: dict[str, int], share: float) -> int | None:
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for depth in sorted(histogram, key=int):
        seen += histogram[depth]
        if seen >= share * total:
            return int(depth)
    return int(max(histogram, key=int))


def _namespace_ok() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, check=False
    )
    return probe.returncode == 0


def run_scenario(name: str, route: str, seed: int, tmp: Path, *, page_relay: bool = False) -> dict[str, Any]:
    delay, jitter, loss = SCENARIOS[name]
    faults = [
        {"seed": seed * 2 + page, "delay_ms": delay, "jitter_ms": jitter, "loss": loss} for page in (1, 2)
    ]
    out = tmp / f"{name}-{seed}.json"
    data_dir = tmp / f"data-{name}-{seed}"
    # The relay runs play the 20-second episode too (the short relay study ends before the driver
    # has sampled a page that plays at full speed on a loaded machine).
    study = "relay_long" if route == "relay" else route
    args = [str(DRIVER), study, str(data_dir), str(out), "--bench", "--faults", json.dumps(faults)]
    if page_relay:
        args.append("--page-relay")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    if route == "direct":
        inner = " ".join([sys.executable, *[f"'{a}'" for a in args], "--media"])
        command = ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"]
    else:
        command = [sys.executable, *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{name}: the driver failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    result = json.loads(out.read_text())
    pages = []
    for index, page in enumerate(result["pages"]):
        last = page["last"] or {}
        stats = last.get("stats") or {}
        histogram = {str(k): v for k, v in (stats.get("depth_histogram") or {}).items()}
        timing = last.get("rollback_time") or {}
        played_s = (stats.get("frames") or 0) / 30.0 or EPISODE_S
        pages.append(
            {
                "page": index + 1,
                "route": last.get("route"),
                "fps": round(last.get("fps") or 0.0, 2),
                "rollbacks_per_s": round((stats.get("rollbacks") or 0) / played_s, 2),
                "depth_p50": _percentile(histogram, 0.5),
                "depth_p99": _percentile(histogram, 0.99),
                "max_depth": stats.get("max_depth"),
                "input_delay": last.get("input_delay"),
                "rtt_ms": None if last.get("rtt_ms") is None else round(last["rtt_ms"], 1),
                "desyncs_detected": stats.get("desyncs_detected"),
                "desyncs_repaired": stats.get("desyncs_repaired"),
                "waits": stats.get("waits"),
                # One resimulated frame: measured before the episode (load, then 8 × step + save,
                # 100 rounds after 100 to warm up), and from the game's own rollbacks (their wall
                # time over the frames they resimulated; the timer is coarse, 0.1 ms, and the
                # worker shares the machine).
                "resim_frame_us": (
                    None if last.get("resim_frame_us") is None else round(last["resim_frame_us"], 1)
                ),
                "resim_frame_in_game_us": (
                    round(timing["ms"] * 1000 / timing["frames"], 1) if timing.get("frames") else None
                ),
                "resimulated_frames": stats.get("resimulated_frames"),
                "main_thread_lag_ms": last.get("main_thread_lag_ms"),
                "skipped": last.get("skipped"),
                "stretched_ticks": last.get("stretched"),
                "stretched_ms": last.get("stretched_ms"),
                "dropped": ((last.get("faults") or {}).get("dropped") or 0)
                + ((last.get("worker_faults") or {}).get("dropped") or 0)
                + (((last.get("worker_relay") or {}).get("faults") or {}).get("dropped") or 0),
                "worker_relay_sent": (last.get("worker_relay") or {}).get("sent"),
                "page_relay_sent": last.get("sent_relay"),
            }
        )
    return {"scenario": name, "route": route, "page_relay": page_relay, "seed": seed, "pages": pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", choices=("direct", "relay"), default=None)
    parser.add_argument("--runs", type=int, default=1, help="runs per scenario (seeds 1, 2, …)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument(
        "--compare-page-relay",
        action="store_true",
        help="relay only: each run twice in turn, relayed by the page's socket (as before the workers' "
        "relay sockets) and by the workers' own sockets; prints the median fps of each",
    )
    args = parser.parse_args(argv)
    route = args.route or ("direct" if _namespace_ok() else "relay")
    load = os.getloadavg()[0]
    print(f"route {route}; load average {load:.1f} on {os.cpu_count()} cores", flush=True)
    variants = (True, False) if args.compare_page_relay and route == "relay" else (False,)
    fps: dict[bool, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="igym-bench-p2p-") as tmp:
        for name in args.scenario or list(SCENARIOS):
            for seed in range(1, args.runs + 1):
                for page_relay in variants:
                    label = " page-socket relay" if page_relay else ""
                    try:
                        summary = run_scenario(name, route, seed, Path(tmp), page_relay=page_relay)
                    except RuntimeError as exc:  # a run that could not start on a loaded machine
                        print(f"{name} #{seed}{label}: failed: {str(exc)[:300]}", flush=True)
                        continue
                    summary["load"] = round(os.getloadavg()[0], 1)
                    for page in summary["pages"]:
                        if page["fps"]:
                            fps[page_relay].append(page["fps"])
                        print(
                            f"{name} #{seed}{label} page {page['page']} ({page['route']}): "
                            f"fps {page['fps']}, "
                            f"rollbacks/s {page['rollbacks_per_s']}, depth p50 {page['depth_p50']} "
                            f"p99 {page['depth_p99']} (max {page['max_depth']}), input delay "
                            f"{page['input_delay']}, RTT {page['rtt_ms']} ms, desyncs "
                            f"{page['desyncs_detected']}/{page['desyncs_repaired']} repaired, waits "
                            f"{page['waits']}, one resimulated frame {page['resim_frame_us']} µs (in the "
                            f"game's rollbacks {page['resim_frame_in_game_us']} µs), load {summary['load']}",
                            flush=True,
                        )
                    print(json.dumps(summary), flush=True)
    for page_relay, values in fps.items():
        if values:
            label = (
                "page-socket relay" if page_relay else "workers' relay sockets" if route == "relay" else route
            )
            print(f"{label}: median fps {statistics.median(values):.2f} over {len(values)} pages", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
