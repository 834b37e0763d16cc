"""The game records of every runtime, built in one place so that their columns are the same.

A runtime writes a game's data as rows of four record types (``host.record(type, row)``):

- ``steps``: one row per agent per env step (:func:`step_row`);
- ``episodes``: one row per episode, written when it ends (:func:`episode_row`);
- ``games``: the game's events: ``started``, ``ended``, ``paused``, ``resumed``, ``partner_left``,
  ``seat_returned`` (:func:`game_started_row` and the functions after it);
- ``state_hashes``: a hash of the env's full state at a step, from runtimes whose env steps
  outside the server (:func:`state_hash_row`), so that ``igym verify`` can re-run the episode;
- ``rejected_batches``: step records such a runtime refused (:func:`rejected_batch_row`), with that
  runtime's own game events (``runtime_loaded``, ``reloaded``, …: :func:`runtime_loaded_row` and the
  functions after it).

Every row starts with the game's ids (:func:`game_ids`, built once per game). The builders take
keyword arguments only, so a runtime cannot put a value in the wrong column, and they make values
JSON-ready (:func:`plain`, :func:`flatten`) where the env hands over numpy values or nested infos.

``step_row`` runs for every agent at every tick of every server-run game: it builds one dict
literal, and converts only what may not be plain already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CONNECTION_STATS",
    "EPISODES",
    "GAMES",
    "P2P_DISAGREEMENTS",
    "P2P_EVENTS",
    "P2P_FRAMES",
    "REJECTED_BATCHES",
    "STATE_HASHES",
    "STEPS",
    "connection_row",
    "episode_row",
    "flatten",
    "game_ended_row",
    "game_ids",
    "game_paused_row",
    "game_resumed_row",
    "game_started_row",
    "game_started_row_of",
    "load_timeout_row",
    "p2p_disagreement_row",
    "p2p_event_row",
    "p2p_frame_row",
    "p2p_route_row",
    "partner_left_row",
    "plain",
    "rejected_batch_row",
    "reloaded_row",
    "restart_episode_row",
    "runtime_load_failed_row",
    "runtime_loaded_row",
    "seat_returned_row",
    "stalled_row",
    "state_hash_row",
    "step_row",
]

#: The record types of a game (the names sinks file the rows under).
STEPS = "steps"
EPISODES = "episodes"
GAMES = "games"
STATE_HASHES = "state_hashes"
#: Step records a browser-run game's page sent that the server refused (:func:`rejected_batch_row`).
REJECTED_BATCHES = "rejected_batches"
#: Each player's connection during a game, every ``GymScene.connection_report_s`` (:func:`connection_row`).
CONNECTION_STATS = "connection_stats"

_PLAIN_TYPES = (bool, int, float, str)  # a tuple: `bool | int | ...` would build a union per call
#: Values ``plain`` returns as they are, by exact type: ``step_row`` tests these without a call.
_EXACTLY_PLAIN = frozenset({int, float, str, bool, type(None)})

#: ``step_row(observation=...)`` default: the scene does not record observations (no column).
NOT_RECORDED: Any = object()


def plain(value: Any) -> Any:
    """JSON-ready form of an action, reward or observation (numpy → lists and Python numbers)."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return repr(value)


def flatten(info: Any, prefix: str = "") -> dict[str, Any] | None:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, values made JSON-ready; empty → None."""
    if not info:
        return None
    if not isinstance(info, Mapping):
        return {prefix or "value": plain(info)}
    out: dict[str, Any] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}.") or {})
        else:
            out[name] = plain(value)
    return out


def game_ids(*, game_id: str, scene_id: str, instance: int, participant_ids: Sequence[str]) -> dict[str, Any]:
    """The columns every record of a game starts with. Build it once per game and pass it to the
    builders (they copy it: a row never shares its dict)."""
    return {
        "game_id": game_id,
        "scene_id": scene_id,
        "instance": instance,
        "participant_ids": list(participant_ids),
    }


def step_row(
    ids: Mapping[str, Any],
    *,
    episode: int,
    step: int,
    tick: int,
    agent: str,
    participant_id: str | None,
    action: Any,
    action_source: str,
    keys_held: Sequence[str] | None,
    reward: Any,
    terminated: Any,
    truncated: Any,
    info: Any,
    t_server_ms: float,
    t_client_ms: float | None = None,
    observation: Any = NOT_RECORDED,
) -> dict[str, Any]:
    """One agent's row of one env step (record type ``steps``).

    ``participant_id`` is the human in the seat (None: a bot's seat, and ``seat`` is ``bot``);
    ``keys_held`` the keys that made a human's action (None for a bot). ``info`` is the agent's
    info mapping (flattened to ``a.b`` keys; empty → None). ``t_server_ms``: the server's wall
    clock (epoch ms) when the step was made (server runtime) or received (browser runtimes);
    ``t_client_ms``: when the participant's browser made it, on its clock (None on the server).
    ``observation``: the observation the agent acted on, only for scenes that record them.
    """
    exactly_plain = _EXACTLY_PLAIN
    row = {
        **ids,
        "episode": episode,
        "step": step,
        "tick": tick,
        "agent": agent,
        "seat": "bot" if participant_id is None else "human",
        "participant_id": participant_id,
        "action": action if type(action) in exactly_plain else plain(action),
        "action_source": action_source,
        "keys_held": None if keys_held is None else list(keys_held),
        "reward": reward if type(reward) in exactly_plain else plain(reward),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "info": flatten(info) if info else None,
        "t_server_ms": t_server_ms,
        "t_client_ms": t_client_ms,
    }
    if observation is not NOT_RECORDED:
        row["observation"] = plain(observation)
    return row


def episode_row(
    ids: Mapping[str, Any],
    *,
    episode: int,
    seed: int,
    steps: int,
    end_reason: str,
    returns: Mapping[str, float],
    seats: Mapping[str, str],
    started_at: str,
    duration_ms: int,
    fps: int,
    frames_dropped: Mapping[str, int],
    tick_lateness_ms_p50: float | None,
    tick_lateness_ms_p99: float | None,
    tick_lateness_ms_max: float | None,
    rtt_ms: Mapping[str, Mapping[str, Any]],
    page_delay_ms: Mapping[str, Mapping[str, Any]] | None = None,
    paused_ms: int,
    pauses: int,
    pause_reasons: Mapping[str, int],
) -> dict[str, Any]:
    """One episode's summary (record type ``episodes``), written when it ends.

    ``returns`` by agent name; ``seats`` human seat → participant id; ``started_at`` ISO UTC;
    ``frames_dropped``, ``rtt_ms`` (the network round trip) and ``page_delay_ms`` (how long probes waited
    in the page), each ``{n, median, p95, max}``, by participant; the tick lateness
    quantiles are None for a runtime without server ticks; ``pause_reasons`` counts pauses by reason.
    """
    return {
        **ids,
        "episode": episode,
        "seed": seed,
        "steps": steps,
        "end_reason": end_reason,
        "returns": dict(returns),
        "seats": dict(seats),
        "started_at": started_at,
        "duration_ms": duration_ms,
        "fps": fps,
        "frames_dropped": dict(frames_dropped),
        "tick_lateness_ms_p50": tick_lateness_ms_p50,
        "tick_lateness_ms_p99": tick_lateness_ms_p99,
        "tick_lateness_ms_max": tick_lateness_ms_max,
        "rtt_ms": dict(rtt_ms),
        "page_delay_ms": dict(page_delay_ms or {}),
        "paused_ms": paused_ms,
        "pauses": pauses,
        "pause_reasons": dict(pause_reasons),
    }


def game_started_row(
    ids: Mapping[str, Any],
    *,
    seats: Sequence[Mapping[str, Any]],
    fps: int,
    num_episodes: int,
    runtime: str,
    continues_game_id: str | None = None,
    continues_from_episode: int | None = None,
) -> dict[str, Any]:
    """The game started (``games`` event ``started``). ``seats``: the seats' description;
    ``runtime``: the runtime's kind; ``continues_*``: the interrupted game this one continues."""
    row = {
        **ids,
        "event": "started",
        "seats": list(seats),
        "fps": fps,
        "num_episodes": num_episodes,
        "runtime": runtime,
    }
    if continues_game_id is not None:
        row["continues"] = {"game_id": continues_game_id, "from_episode": continues_from_episode}
    return row


def game_started_row_of(
    ids: Mapping[str, Any], *, info: Any, scene: Any, runtime: str, continues: Any
) -> dict[str, Any]:
    """:func:`game_started_row` for a runtime's game: its seats from ``info`` (a ``GameInfo``), fps
    and episodes from ``scene``, ``continues`` (the interrupted game it continues, or None). Every
    runtime's ``begin`` records this row."""
    from igym_core.session.games import seats_description

    return game_started_row(
        ids,
        seats=seats_description(info.seats),
        fps=scene.fps,
        num_episodes=scene.num_episodes,
        runtime=runtime,
        continues_game_id=continues.game_id if continues is not None else None,
        continues_from_episode=continues.from_episode if continues is not None else None,
    )


def game_ended_row(ids: Mapping[str, Any], *, reason: str, episodes_played: int) -> dict[str, Any]:
    """The game ended (``games`` event ``ended``), for ``reason`` (``completed``, ``abandoned``, …)."""
    return {**ids, "event": "ended", "reason": reason, "episodes_played": episodes_played}


def game_paused_row(ids: Mapping[str, Any], *, reason: str, episode: int, step: int) -> dict[str, Any]:
    """The game paused at ``episode``/``step`` (``games`` event ``paused``) for ``reason``."""
    return {**ids, "event": "paused", "reason": reason, "episode": episode, "step": step}


def game_resumed_row(
    ids: Mapping[str, Any], *, reason: str, episode: int, step: int, paused_ms: int
) -> dict[str, Any]:
    """The game resumed (``games`` event ``resumed``): ``reason`` for the pause is gone."""
    return {
        **ids,
        "event": "resumed",
        "reason": reason,
        "episode": episode,
        "step": step,
        "paused_ms": paused_ms,
    }


def partner_left_row(ids: Mapping[str, Any], *, left: str, seat: str, outcome: str) -> dict[str, Any]:
    """A player (``left``) of seat ``seat`` stayed away past the grace period (``games`` event
    ``partner_left``); ``outcome``: what the game did (``bot`` took the seat, or ``end``)."""
    return {**ids, "event": "partner_left", "left": left, "seat": seat, "outcome": outcome}


def seat_returned_row(ids: Mapping[str, Any], *, participant_id: str, seat: str) -> dict[str, Any]:
    """A player came back to the seat a bot had taken (``games`` event ``seat_returned``)."""
    return {**ids, "event": "seat_returned", "participant_id": participant_id, "seat": seat}


def restart_episode_row(
    ids: Mapping[str, Any],
    *,
    episode: int,
    seed: int | None,
    steps: int,
    returns: Mapping[str, float],
    seats: Mapping[str, str],
    started_at: str | None,
    duration_ms: int | None,
    fps: int | None,
) -> dict[str, Any]:
    """The ``episodes`` row of an episode a killed server cut short, written at the next start from
    the steps that reached the disk (``end_reason`` ``server_restart``): :func:`episode_row`'s columns,
    those nobody measured null."""
    return {
        **ids,
        "episode": episode,
        "seed": seed,
        "steps": steps,
        "end_reason": "server_restart",
        "returns": dict(returns),
        "seats": dict(seats),
        "started_at": started_at,
        "duration_ms": duration_ms,
        "fps": fps,
        "frames_dropped": None,
        "tick_lateness_ms_p50": None,
        "tick_lateness_ms_p99": None,
        "tick_lateness_ms_max": None,
        "rtt_ms": None,
        "page_delay_ms": None,
        "paused_ms": None,
        "pauses": None,
        "pause_reasons": None,
    }


# --- runtimes whose env steps in the browser: their own game events and refused records ----------
def runtime_loaded_row(
    ids: Mapping[str, Any], *, ms: float, stages: Mapping[str, float], reload: bool
) -> dict[str, Any]:
    """The page loaded the game's runtime in ``ms`` (``games`` event ``runtime_loaded``); ``stages``:
    milliseconds by stage (``runtime_ms``, ``packages_ms``, …); ``reload``: a page loaded it before."""
    return {**ids, "event": "runtime_loaded", "ms": ms, "stages": dict(stages), "reload": reload}


def runtime_load_failed_row(ids: Mapping[str, Any], *, stage: str, message: str) -> dict[str, Any]:
    """The page could not load the game at ``stage`` (``games`` event ``runtime_load_failed``)."""
    return {**ids, "event": "runtime_load_failed", "stage": stage, "message": message}


def load_timeout_row(ids: Mapping[str, Any], *, load_timeout_s: float) -> dict[str, Any]:
    """No page loaded the game within ``load_timeout_s`` (``games`` event ``load_timeout``)."""
    return {**ids, "event": "load_timeout", "load_timeout_s": load_timeout_s}


def stalled_row(ids: Mapping[str, Any], *, episode: int, step: int, silent_s: float) -> dict[str, Any]:
    """A connected page sent no steps of ``episode`` for ``silent_s`` after ``step`` (``games`` event
    ``stalled``)."""
    return {**ids, "event": "stalled", "episode": episode, "step": step, "silent_s": silent_s}


def reloaded_row(ids: Mapping[str, Any], *, episode: int, step: int, rule: str) -> dict[str, Any]:
    """A new page took over mid-episode after ``step`` of ``episode`` (``games`` event ``reloaded``);
    ``rule``: what the game does next (the scene's ``on_reload``)."""
    return {**ids, "event": "reloaded", "episode": episode, "step": step, "rule": rule}


def rejected_batch_row(
    ids: Mapping[str, Any],
    *,
    participant_id: str,
    batch: int | None,
    episode: int | None,
    first_step: int | None,
    steps: int | None,
    rule: str,
    problem: str,
    expected_batch: int,
    t_server_ms: float,
) -> dict[str, Any]:
    """A batch of step records the server refused (record type ``rejected_batches``): what it claimed
    (None where it could not be read), the ``rule`` it broke, the ``problem`` the page was told, and
    the batch number the server expected."""
    return {
        **ids,
        "participant_id": participant_id,
        "batch": batch,
        "episode": episode,
        "first_step": first_step,
        "steps": steps,
        "rule": rule,
        "problem": problem,
        "expected_batch": expected_batch,
        "t_server_ms": t_server_ms,
    }


def state_hash_row(ids: Mapping[str, Any], *, episode: int, step: int, state_hash: str) -> dict[str, Any]:
    """The hash of the env's full state after ``step`` of ``episode`` (record type
    ``state_hashes``; runtimes whose env steps in the browser)."""
    return {**ids, "episode": episode, "step": step, "state_hash": state_hash}


# --- peer-to-peer games (runtime ``pyodide_p2p``, plugin igym-pyodide-p2p) ----------------------
#: One row per confirmed frame per page: what that page predicted and how often it rolled back.
P2P_FRAMES = "p2p_frames"
#: What a page's rollback engine noticed (desyncs and their repair, a silent or lost partner, …).
P2P_EVENTS = "p2p_events"
#: Where the two pages' records of a frame differ (or a frame only one page ever reported).
P2P_DISAGREEMENTS = "p2p_disagreements"


def p2p_frame_row(
    ids: Mapping[str, Any],
    *,
    episode: int,
    step: int,
    seat: str,
    participant_id: str,
    rollbacks: int | None,
    predicted: Any,
) -> dict[str, Any]:
    """Frame ``step`` of ``episode`` as the page of ``seat`` confirmed it (``p2p_frames``):
    ``rollbacks``, how often the page re-simulated it; ``predicted``, the partner's action it first
    predicted (None: the real one came first)."""
    return {
        **ids,
        "episode": episode,
        "step": step,
        "seat": seat,
        "participant_id": participant_id,
        "rollbacks": rollbacks,
        "predicted": plain(predicted),
    }


def p2p_event_row(
    ids: Mapping[str, Any],
    *,
    participant_id: str,
    seat: str,
    kind: str,
    episode: int,
    frame: int,
    detail: Mapping[str, Any],
    t_server_ms: float,
) -> dict[str, Any]:
    """An engine event a page reported (``p2p_events``): ``kind`` (``desync_detected``, …) at
    ``frame`` of ``episode``, with the page's ``detail``."""
    return {
        **ids,
        "participant_id": participant_id,
        "seat": seat,
        "kind": kind,
        "episode": episode,
        "frame": frame,
        "detail": plain(dict(detail)),
        "t_server_ms": t_server_ms,
    }


def p2p_disagreement_row(
    ids: Mapping[str, Any],
    *,
    episode: int,
    step: int | None,
    field: str,
    agent: str | None,
    values: Mapping[str, Any],
    count: int = 1,
) -> dict[str, Any]:
    """The two pages' records of a frame differ (``p2p_disagreements``): ``field`` (``action``,
    ``reward``, ``terminated``, ``truncated``, ``state_hash``; ``unconfirmed``: only one page
    reported it; ``more``: a summary of ``count`` differences past the per-episode limit) of
    ``agent``, and each seat's value (``values``: seat → value)."""
    return {
        **ids,
        "episode": episode,
        "step": step,
        "field": field,
        "agent": agent,
        "values": {str(seat): plain(value) for seat, value in values.items()},
        "count": count,
    }


def p2p_route_row(
    ids: Mapping[str, Any],
    *,
    participant_id: str,
    seat: str,
    route: str,
    rtt_ms: float | None,
    input_delay: int,
    reason: str,
    episode: int,
) -> dict[str, Any]:
    """The route a page's inputs take (``games`` event ``p2p_route``): ``direct`` (WebRTC) or
    ``relay`` (through the server, ``reason`` says why), with its measured ``rtt_ms`` and input delay."""
    return {
        **ids,
        "event": "p2p_route",
        "participant_id": participant_id,
        "seat": seat,
        "route": route,
        "rtt_ms": rtt_ms,
        "input_delay": input_delay,
        "reason": reason,
        "episode": episode,
    }


def connection_row(
    ids: Mapping[str, Any],
    *,
    participant_id: str,
    seat: str | None,
    episode: int,
    step: int,
    period_ms: int,
    connected: bool,
    runtime_draws: bool,
    rtt_ms: Sequence[float],
    page_delay_ms: Sequence[float],
    probes_sent: int,
    probes_answered: int,
    frames_sent: int,
    frames_dropped: int,
    bytes_sent: int,
    steps_received: int,
) -> dict[str, Any]:
    """One player's connection over the last ``period_ms`` (``connection_stats``): the network round
    trips measured (ms, in order; the page's own delay taken out, and listed apart), probes sent and
    answered, and what was delivered: frames sent, dropped because the socket was still busy, and
    their bytes for a runtime that draws on the server (``runtime_draws``; else None), or the steps
    the player's page sent that the server stored (browser runtimes; else None). ``episode`` and
    ``step``: where the game was when the row was written."""
    return {
        **ids,
        "participant_id": participant_id,
        "seat": seat,
        "episode": episode,
        "step": step,
        "period_ms": period_ms,
        "connected": connected,
        "rtt_ms": list(rtt_ms),
        "page_delay_ms": list(page_delay_ms),
        "probes_sent": probes_sent,
        "probes_answered": probes_answered,
        "frames_sent": frames_sent if runtime_draws else None,
        "frames_dropped": frames_dropped if runtime_draws else None,
        "bytes_sent": bytes_sent if runtime_draws else None,
        "steps_received": None if runtime_draws else steps_received,
    }
