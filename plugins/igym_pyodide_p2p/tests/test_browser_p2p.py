"""Two Chromium pages play P2P Slime Volleyball (``runtime="pyodide_p2p"``) against a real ``igym run``:
over the server's relay; over a direct WebRTC DataChannel (Chromium and the server inside a network
namespace the test makes); over WebRTC with the seeded fault hook adding delay, jitter, loss and
duplicates; over WebRTC with an nftables rule in that namespace dropping real UDP packets; with one
page closing mid-game (the scripted bot takes its seat); and with one page reloading mid-game (it
resumes from its partner's state).

Each run asserts what a participant and a researcher rely on: each participant's keys moved their
slime on the partner's screen, every frame of the episode is stored exactly once per agent with the
two pages' copies agreeing (no ``p2p_disagreements``), the route is recorded, every detected desync
was repaired, ``igym verify`` re-runs the episode on the server with the same rewards and state
hashes, and, last, both pages ran at ≥ 27 fps (``MIN_FPS``: the engine's frames over the
episode's time; 30 is the target; these tests run in ``make test``'s serial run). Screenshots go
to ``test-artifacts/p2p/`` (look at them: the game must look like the server runtime's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from igym_core.testing import LiveServer, read_records
from igym_core.testing.pixels import colour_mask, png_pixels
from igym_slime.render import COLOURS, SKY

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402
from p2p_pages import SCENE, play_pair, study  # noqa: E402

from igym_core.testing.support import in_chromium  # noqa: E402

#: The tests that check a game's fps (against MIN_FPS) run alone: `make test`'s serial run.
judges_fps = pytest.mark.serial

ARTIFACTS = HERE.parents[2] / "test-artifacts" / "p2p"
STEPS = 300  # as the study's STEPS (the relay, leaving and reloading games)
LONG_STEPS = 600  # as the study's LONG_STEPS (the direct games: 20 seconds)
#: A floor on both pages' fps (the scene's is 30): the engine's frames over the episode's time, at
#: least 90 % of the rate. Fails for a game that stalls, waits on its partner (inputs arriving after
#: the prediction window: 150 ms of delay each way on the relay gave 7 fps), or skips deadlines
#: because its frames cost too much. The relay route (through the page's main thread) measured
#: 28.0–28.3 fps at machine load 13 and 19 at load 15–25 (December 2026): the check needs the
#: serial run and a machine others do not swamp. The issue's goal (>= 29 fps at 60 ms RTT) is
#: measured by bench/p2p_browser.py on a quiet machine.
MIN_FPS = 27.0
RECORD_TYPES = (
    "steps",
    "episodes",
    "games",
    "p2p_events",
    "p2p_disagreements",
    "p2p_frames",
    "state_hashes",
)


def _run(name: str, tmp_path: Path, **kwargs: Any) -> tuple[dict[str, Any], Path]:
    data_dir = tmp_path / "data"
    with LiveServer(study(name), data_dir, plugins=["igym_pyodide_p2p.plugin"]) as server:
        url = server.url
        standin = Standin(url, (SCENE,))
        result = in_chromium(
            lambda browser: play_pair(browser, url, standin, screenshots=ARTIFACTS / name, **kwargs), 600
        )
    (ARTIFACTS / name / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result, data_dir


def _pages_played_well(result: dict[str, Any], pages: tuple[int, ...] = (0, 1)) -> None:
    assert result["blocked"] == []
    for index in pages:
        page = result["pages"][index]
        assert page["errors"] == [], (index, page["errors"], page["console"])
        assert page["last"] is not None, page
    assert result["moved"] == {"left_on_right_page": True, "right_on_left_page": True}, result["moved"]


def _fps_held(result: dict[str, Any], pages: tuple[int, ...] = (0, 1)) -> None:
    """Both pages' engines advanced at ≥ MIN_FPS over the episode (checked last: the rest of a run
    says more when it fails)."""
    for index in pages:
        last = result["pages"][index]["last"]
        fps = last["fps_by_episode"].get("1")
        assert fps is not None and fps >= MIN_FPS, (index, fps, last["stats"])


def _screenshots_look_like_slime(result: dict[str, Any]) -> None:
    for path in result["screenshots"][:2]:
        pixels = png_pixels(Path(path).read_bytes())
        assert colour_mask(pixels, SKY, tolerance=12).mean() > 0.25, path
        for agent in ("left", "right"):
            assert colour_mask(pixels, COLOURS[agent], tolerance=30).sum() > 200, (path, agent)


def _data_complete(
    data_dir: Path,
    experiment: str,
    *,
    route: str | None,
    steps: int = STEPS,
    seats: tuple[str, ...] = ("left", "right"),
    unconfirmed_steps: int = 0,
) -> dict[str, Any]:
    """Every frame once per agent, both pages' copies agreeing, the route (``route``; None: any) and
    the hashes recorded, no desync left unrepaired; the records, by type."""
    records = {
        kind: [r for r in read_records(data_dir, experiment, kind) if r.get("scene_id", SCENE) == SCENE]
        for kind in RECORD_TYPES
    }
    steps_rows = records["steps"]
    counts = Counter((r["episode"], r["step"], r["agent"]) for r in steps_rows)
    assert counts and set(counts.values()) == {1}, Counter(counts.values())
    assert [e["episode"] for e in records["episodes"]] == [1]
    # The episode ran to max_steps, or ended early when a side lost all its lives.
    played = records["episodes"][0]["steps"]
    assert played == steps or records["episodes"][0]["end_reason"] == "terminated", records["episodes"]
    for agent in ("left", "right"):
        numbers = sorted(r["step"] for r in steps_rows if r["agent"] == agent and r["episode"] == 1)
        assert numbers == list(range(1, played + 1)), (agent, numbers[:3], numbers[-3:], len(numbers))
    # The two pages' copies agree. ``unconfirmed_steps``: how many frames may lack the second copy
    # (a page that closed took its last unsent batch with it, at most a second of frames).
    differing = [d for d in records["p2p_disagreements"] if d["field"] != "unconfirmed"]
    assert differing == [], differing[:5]
    unconfirmed = {d["step"] for d in records["p2p_disagreements"] if d["field"] == "unconfirmed"}
    assert len(unconfirmed) <= unconfirmed_steps, sorted(unconfirmed)
    routes = [g for g in records["games"] if g.get("event") == "p2p_route"]
    assert routes and (route is None or {g["route"] for g in routes} == {route}), routes
    kinds = Counter(e["kind"] for e in records["p2p_events"])
    assert kinds["desync_detected"] == kinds["desync_repaired"], kinds
    assert records["state_hashes"], "no state hashes"
    # The pages' frames (``seats``: the pages that played to the end): one p2p_frames row per
    # confirmed frame per page.
    per_seat = Counter(r["seat"] for r in records["p2p_frames"] if r["episode"] == 1)
    assert {seat: per_seat[seat] for seat in seats} == dict.fromkeys(seats, played), per_seat
    return records


def _verify(data_dir: Path, experiment: str, target: str) -> None:
    verify = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "verify", str(data_dir / experiment), "--experiment", target],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


@judges_fps
def test_two_pages_play_over_the_relay(tmp_path: Path) -> None:
    result, data_dir = _run("relay", tmp_path)
    _pages_played_well(result)
    _screenshots_look_like_slime(result)
    for page in result["pages"]:
        last = page["last"]
        assert last["route"] == "relay" and last["sent_direct"] == 0, last
        assert [r["route"] for r in last["routes_reported"]] == ["relay"], last["routes_reported"]
        # The relayed packets went worker to server to worker on the workers' own sockets, off the
        # pages' main threads (a few may go by the page before its worker's socket opened).
        worker = last["worker_relay"]
        assert worker and worker["opened"] == 1 and worker["sent"] > 150 and worker["received"] > 150, worker
        assert last["sent_relay"] < worker["sent"] / 10, (last["sent_relay"], worker)
    records = _data_complete(data_dir, "slime_p2p_relay", route="relay")
    summary = next(g for g in records["games"] if g.get("event") == "p2p_summary")
    assert all(page["worker_relayed"] > 150 for page in summary["pages"].values()), summary
    # Each page said how long each round-trip probe waited for its main thread (rtt_echo.page_delay_ms).
    (episode,) = records["episodes"]
    assert len(episode["rtt_ms"]) == 2 and all(s["n"] >= 1 for s in episode["rtt_ms"].values()), episode
    assert {p: s["n"] for p, s in episode["page_delay_ms"].items()} == {
        p: s["n"] for p, s in episode["rtt_ms"].items()
    }, episode
    # The keys each page held reached the steps of its own seat.
    left = [r for r in records["steps"] if r["agent"] == "left"]
    assert any(r["action"] == 2 and r["action_source"] == "human" for r in left)
    right = [r for r in records["steps"] if r["agent"] == "right"]
    assert any(r["action"] == 1 and r["action_source"] == "human" for r in right)
    _fps_held(result)


def _namespace_problem() -> str | None:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"`unshare -n` cannot make a network namespace here: {probe.stderr.strip()}"
    return None


def _run_in_namespace(
    name: str, tmp_path: Path, *args: str, nft_rules: str | None = None
) -> tuple[dict[str, Any], Path]:
    """The two-page run of study ``name`` with its own server and Chromium inside a network
    namespace with only loopback (up): with --allow-loopback-in-peer-connection and camera and
    microphone granted, WebRTC has host candidates there. Skips when no namespace can be made.
    ``nft_rules``: an nftables ruleset loaded in the namespace before the run; its counters (``nft
    -j list counters``) are written to ``tmp_path / "nft_counters.json"`` after it."""
    problem = _namespace_problem()
    if problem:
        pytest.skip(f"WebRTC between two headless pages needs a network namespace: {problem}")
    data_dir = tmp_path / "data"
    out = tmp_path / "result.json"
    script = HERE / "p2p_pages.py"
    inner = " ".join(f"'{a}'" for a in (sys.executable, script, name, data_dir, out, "--media", *args))
    command = f"ip link set lo up && exec {inner}"
    if nft_rules is not None:
        rules = tmp_path / "rules.nft"
        rules.write_text(nft_rules)
        counters = tmp_path / "nft_counters.json"
        command = (
            f"ip link set lo up && nft -f '{rules}' && {{ {inner}; status=$?; "
            f"nft -j list counters > '{counters}'; exit $status; }}"
        )
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    result = json.loads(out.read_text())
    target = ARTIFACTS / name
    target.mkdir(parents=True, exist_ok=True)
    if (out.parent / "shots").is_dir():
        shutil.copytree(out.parent / "shots", target, dirs_exist_ok=True)
    (target / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result, data_dir


@judges_fps
def test_two_pages_play_over_a_direct_webrtc_channel(tmp_path: Path) -> None:
    result, data_dir = _run_in_namespace("direct", tmp_path)
    _pages_played_well(result)
    _screenshots_look_like_slime(result)
    for page in result["pages"]:
        last = page["last"]
        assert last["route"] == "direct", last
        assert last["sent_direct"] > 0 and last["received_direct"] > 0, last
        assert [r["route"] for r in last["routes_reported"]] == ["direct"], last["routes_reported"]
        assert last["routes_reported"][0]["rtt_ms"] is not None
        # The packets went worker to worker (the page's main thread draws), and the partner kept up:
        # "Waiting for your partner…" showed in few of the samples, not for good.
        assert last["channel_in_worker"] is True, last
        waiting = [s for s in page["samples"] if s["notice"]]
        assert len(waiting) <= len(page["samples"]) // 4, [(s["t"], s["notice"]) for s in waiting]
    _data_complete(data_dir, "slime_p2p_direct", route="direct", steps=LONG_STEPS)
    _verify(data_dir, "slime_p2p_direct", study("direct"))
    _fps_held(result)


@judges_fps
def test_two_pages_play_through_delay_jitter_and_loss(tmp_path: Path) -> None:
    faults = (
        {"seed": 1, "delay_ms": 60, "jitter_ms": 20, "loss": 0.05, "duplicate": 0.02},
        {"seed": 2, "delay_ms": 60, "jitter_ms": 20, "loss": 0.05, "duplicate": 0.02},
    )
    # Over the DataChannel (the hook then runs in the worker, which holds the channel).
    result, data_dir = _run_in_namespace("direct", tmp_path, "--faults", json.dumps(faults))
    _pages_played_well(result)
    for page in result["pages"]:
        last = page["last"]
        assert last["route"] == "direct" and last["channel_in_worker"] is True, last
        # The hook was on: packets were dropped and duplicated.
        hook = last["worker_faults"]
        assert hook["dropped"] > 0 and hook["duplicated"] > 0, hook
    # Inputs came later than the input delay: the engines predicted wrong and rolled back.
    assert sum(p["last"]["stats"]["rollbacks"] for p in result["pages"]) > 0
    _data_complete(data_dir, "slime_p2p_direct", route="direct", steps=LONG_STEPS)
    _fps_held(result)


#: The share of UDP packets (in percent) the kernel drops in the lossy direct game: WebRTC's ICE,
#: DTLS and the unreliable DataChannel's SCTP packets, both pages' (every packet either page sends
#: arrives on ``lo``'s input hook). Dropped on input, as a lost packet is: a drop on output would
#: fail the sender's ``sendto`` with EPERM, which no real network does.
NFT_LOSS_PERCENT = 5
NFT_LOSS_RULES = f"""table inet igym_p2p_loss {{
    counter udp_seen {{ }}
    counter udp_lost {{ }}
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname "lo" meta l4proto udp counter name "udp_seen"
        iifname "lo" meta l4proto udp numgen random mod 100 < {NFT_LOSS_PERCENT} counter name "udp_lost" drop
    }}
}}
"""


def test_two_pages_play_over_a_direct_channel_losing_real_packets(tmp_path: Path) -> None:
    # Fails (does not skip) without a namespace or nft: `make test` installs nftables, and a lab's CI
    # that cannot run this has not tested the direct route under loss.
    problem = _namespace_problem()
    assert problem is None, f"this test drops packets in a network namespace it makes: {problem}"
    assert shutil.which("nft"), (
        "nft is not installed: run `make nftables` (apt-get install nftables, as root)"
    )
    result, data_dir = _run_in_namespace("direct", tmp_path, nft_rules=NFT_LOSS_RULES)
    counters = {
        item["counter"]["name"]: item["counter"]["packets"]
        for item in json.loads((tmp_path / "nft_counters.json").read_text())["nftables"]
        if "counter" in item
    }
    (ARTIFACTS / "direct").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "direct" / "nft_counters.json").write_text(json.dumps(counters))
    # The kernel dropped a real share of the pages' UDP packets (about NFT_LOSS_PERCENT of them).
    seen, dropped = counters["udp_seen"], counters["udp_lost"]
    assert seen > 500 and dropped > 0, counters
    assert 0.4 * NFT_LOSS_PERCENT <= 100 * dropped / seen <= 2.5 * NFT_LOSS_PERCENT, counters
    _pages_played_well(result)
    for page in result["pages"]:
        last = page["last"]
        assert last["route"] == "direct" and last["channel_in_worker"] is True, last
        assert [r["route"] for r in last["routes_reported"]] == ["direct"], last["routes_reported"]
        assert last["sent_direct"] > 0 and last["received_direct"] > 0, last
    # That the packets were really lost is the nft rule's drop counter (asserted above): the pages'
    # own sent/received counts are sampled at different moments and do not pair up exactly.
    # Every frame stored once, both pages' copies agreeing, every desync repaired, the server's
    # re-run of the episode giving the same rewards and hashes.
    _data_complete(data_dir, "slime_p2p_direct", route="direct", steps=LONG_STEPS)
    _verify(data_dir, "slime_p2p_direct", study("direct"))


@judges_fps
def test_a_page_closing_mid_game_hands_its_seat_to_the_bot(tmp_path: Path) -> None:
    # Over the DataChannel: when the partner's page closes, the staying page's channel closes and
    # it relays what is left to send.
    result, data_dir = _run_in_namespace("leaving_direct", tmp_path, "--close-after", "4")
    _pages_played_well(result, pages=(0,))
    assert result["closed_at"] is not None
    staying = result["pages"][0]
    # The remaining page saw its partner go, and played the episode to its end.
    assert staying["scene"] == "after", staying
    assert any(s["partner"] == "left" for s in staying["samples"]), staying["samples"][-3:]
    routes = [r["route"] for r in staying["last"]["routes_reported"]]
    assert routes[0] == "direct", routes
    records = _data_complete(
        data_dir, "slime_p2p_leaving_direct", route=None, seats=("left",), unconfirmed_steps=31
    )
    left_events = [g for g in records["games"] if g.get("event") == "partner_left"]
    assert [(g["seat"], g["outcome"]) for g in left_events] == [("right", "bot")], left_events
    right = sorted((r for r in records["steps"] if r["agent"] == "right"), key=lambda r: r["step"])
    assert right[-1]["action_source"] in ("bot", "bot_repeat"), right[-1]
    # The episode's fps counts the wait for the partner-left rule; from the bot's first frame on, the
    # staying page plays at full speed.
    alone = [s for s in staying["samples"] if s["partner"] == "left"]
    rate = (alone[-1]["frames"] - alone[0]["frames"]) / (alone[-1]["t"] - alone[0]["t"])
    assert rate >= MIN_FPS, (rate, len(alone))


def test_a_reloaded_page_resumes_from_its_partners_state(tmp_path: Path) -> None:
    # Over the DataChannel (in the namespace): the reload drops both pages to the relay, then the
    # authority offers a new connection and both go direct again.
    result, data_dir = _run_in_namespace("reloading", tmp_path, "--reload-after", "6")
    assert result["blocked"] == [] and result["reloaded_at"] is not None
    staying, reloaded = result["pages"]
    assert staying["errors"] == [] and reloaded["errors"] == [], (staying["errors"], reloaded["errors"])
    # The staying page heard its partner come back; the new page resumed mid-episode
    # from the staying page's state and played the episode to its end.
    assert any(s["partner"] == "back" for s in staying["samples"]), staying["samples"][-3:]
    assert staying["scene"] == "after" and reloaded["scene"] == "after", (staying["scene"], reloaded["scene"])
    assert any(e["kind"] == "resumed" for e in reloaded["last"]["events"]), reloaded["last"]["events"]
    # Direct, relay while the partner reloaded, direct again; the new page: relay until the new
    # channel opens (it may open before the page has reported the relay at all), then direct.
    staying_routes = [r["route"] for r in staying["last"]["routes_reported"]]
    assert staying_routes == ["direct", "relay", "direct"], staying["last"]["routes_reported"]
    reloaded_routes = [r["route"] for r in reloaded["last"]["routes_reported"]]
    assert reloaded_routes in (["relay", "direct"], ["direct"]), reloaded["last"]["routes_reported"]
    assert staying["last"]["route"] == "direct" and reloaded["last"]["route"] == "direct"
    assert reloaded["last"]["received_direct"] > 0 and staying["last"]["received_direct"] > 0
    records = _data_complete(
        data_dir, "slime_p2p_reloading", route=None, steps=2 * STEPS, seats=("left",), unconfirmed_steps=31
    )
    routes = [(g["seat"], g["route"]) for g in records["games"] if g.get("event") == "p2p_route"]
    assert routes[-2:] in (
        [("left", "direct"), ("right", "direct")],
        [("right", "direct"), ("left", "direct")],
    )
    # The new page's frames: from where it resumed to the end.
    resumed_frames = sorted(r["step"] for r in records["p2p_frames"] if r["seat"] == "right")
    assert resumed_frames[-1] == records["episodes"][0]["steps"], resumed_frames[-3:]
    assert not any(g.get("event") == "partner_left" for g in records["games"])
    _verify(data_dir, "slime_p2p_reloading", study("reloading"))
