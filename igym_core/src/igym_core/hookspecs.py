"""Every hook igym calls. Plugins implement them with ``@igym_core.hookimpl``.

Three families, and nothing else:

- ``igym_register_*``: return a list; every implementation is called and the lists are joined.
- ``igym_resolve_*``: "who handles this?"; ``firstresult``, the built-in answer is ``trylast`` so
  that any installed plugin can take over by returning something other than ``None``.
- ``igym_on_*``: notifications. A failing notification is logged and never ends a participant's
  study (unless the app runs with ``strict_plugins``, as tests do).

Hooks are synchronous and cheap: no I/O in a hook body. Async work is returned, not performed.
Hooks evolve by gaining arguments, never by losing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from igym_core.plugins.markers import hookspec

if TYPE_CHECKING:
    from igym_core.commands import Command
    from igym_core.config.experiment import Experiment
    from igym_core.data.interface import DataSink
    from igym_core.matchmaking.interface import Matchmaker
    from igym_core.plugins.assets import ClientAssets
    from igym_core.plugins.manager import IgymPluginManager
    from igym_core.policies.interface import PolicyLoader
    from igym_core.recruitment import Outcome, Recruiter
    from igym_core.rendering.interface import Renderer
    from igym_core.runtime.interface import GameInfo, Runtime
    from igym_core.scenes.interface import SceneConfig
    from igym_core.session.conditions import ConditionLedger
    from igym_core.session.participant import Participant, ParticipantIdentity
    from igym_core.settings import Settings

__all__ = [
    "igym_add_hookspecs",
    "igym_on_episode_ended",
    "igym_on_episode_started",
    "igym_on_game_ended",
    "igym_on_game_started",
    "igym_on_matched",
    "igym_on_participant_finished",
    "igym_on_participant_joined",
    "igym_on_participant_left",
    "igym_on_partner_left",
    "igym_on_scene_activated",
    "igym_on_waiting_timeout",
    "igym_register_client_assets",
    "igym_register_commands",
    "igym_register_data_sinks",
    "igym_register_matchmakers",
    "igym_register_outcomes",
    "igym_register_policy_loaders",
    "igym_register_recruiters",
    "igym_register_renderers",
    "igym_register_routes",
    "igym_register_runtimes",
    "igym_register_scene_types",
    "igym_resolve_condition",
    "igym_resolve_participant",
]

# --- set-up ------------------------------------------------------------------------------------


@hookspec(historic=True)
def igym_add_hookspecs(plugin_manager: IgymPluginManager) -> None:
    """Add a plugin's own hook specifications.

    Called once for every plugin as it is registered (historic), before any other hook. A plugin
    that offers hooks of its own calls ``plugin_manager.add_hookspecs(module)`` here; prefix such
    hooks with the plugin's name (``igym_p2p_on_desync``).

    Args:
        plugin_manager: the app's plugin manager.

    Returns:
        Nothing.

    .. versionadded:: 0.1
    """


# --- registration: every implementation called, lists joined ---------------------------------


@hookspec
def igym_register_scene_types() -> list[type[SceneConfig]]:
    """Register scene types.

    Called once when the app's registry is built. Each class derives from
    ``igym_core.scenes.interface.SceneConfig`` and has a unique ``kind``; experiments select it by
    that ``kind``, and the browser renders it with the client renderer registered under the same
    ``kind``.

    Returns:
        A list of scene config classes (empty if the plugin adds none).

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_matchmakers() -> list[type[Matchmaker]]:
    """Register matchmakers, which group waiting participants into games.

    Called once when the app's registry is built.

    Returns:
        A list of ``Matchmaker`` subclasses, each with a unique ``kind``.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_renderers() -> list[type[Renderer]]:
    """Register renderers, which turn environment state into frames for the browser.

    Called once when the app's registry is built.

    Returns:
        A list of ``Renderer`` subclasses, each with a unique ``kind``.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_runtimes() -> list[type[Runtime]]:
    """Register runtimes, which decide where a game scene's environment steps.

    Called once when the app's registry is built.

    Returns:
        A list of ``Runtime`` subclasses, each with a unique ``kind``. A runtime's ``messages``
        (client → server message types) join the app's decoder: a ``type`` declared twice refuses
        the start. Its ``check_scene`` runs for every scene it runs, in ``igym check`` and
        ``igym run`` alike (see docs/runtimes.md).

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_policy_loaders() -> list[type[PolicyLoader]]:
    """Register policy loaders, which build bots from a policy spec.

    Called once when the app's registry is built.

    Returns:
        A list of ``PolicyLoader`` subclasses, each with a unique ``kind``.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_data_sinks() -> list[type[DataSink]]:
    """Register data sinks, which store records as they happen.

    Called once when the app's registry is built. Each class has a unique ``kind`` and a
    ``config_type`` (a ``SinkConfig`` subclass) that experiments use to select and configure it.

    Returns:
        A list of ``DataSink`` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_recruiters() -> list[type[Recruiter]]:
    """Register recruitment platforms (Prolific, MTurk, a lab's own panel).

    Called once when the app's registry is built. Each class derives from
    ``igym_core.recruitment.Recruiter`` (an attrs config class) and has a unique ``kind``; an
    experiment selects one with ``Experiment(recruitment=...)``. It reads the platform's URL
    parameters, names the participant's identity and builds the way back for each outcome.

    Returns:
        A list of ``Recruiter`` subclasses (empty if the plugin adds none).

    .. versionadded:: 0.2
    """


@hookspec
def igym_register_outcomes() -> list[Outcome]:
    """Declare the outcomes (``Participant.outcome``) a plugin ends participants' studies with.

    Called once when the app's registry is built. Each ``igym_core.recruitment.Outcome`` has a
    unique ``name``, the platform outcome it is reported as (``completed``, ``screened_out``,
    ``no_partner``, ``partner_left``, ``timed_out``), a one-line ``meaning`` and optionally
    ``reached_in(scene)``, why a scene can end a study with it (``igym check`` warns when the
    recruiter has no code for a reachable one). An outcome nobody declares is reported as
    ``timed_out`` and logged as an error (``outcome_undeclared``). Core's own are in
    ``igym_core.builtin.outcomes``.

    Returns:
        A list of ``Outcome`` values (empty if the plugin ends no study its own way).

    .. versionadded:: 0.3
    """


@hookspec
def igym_register_commands() -> list[type[Command]]:
    """Register subcommands of the ``igym`` command line (``igym export``, ``igym onnx ...``).

    Called once when ``igym`` builds its argument parser. Each class derives from
    ``igym_core.commands.Command``; its ``kind`` is the subcommand's name and must not be one of the
    core's own (``run``, ``check``, ``plugins``).

    Returns:
        A list of command classes.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_client_assets() -> list[ClientAssets]:
    """Register browser files: a directory served at ``/plugins/<plugin>/`` and an ES module entry.

    Called once when the app is built. The participant page imports every ``entry`` module before
    the study starts and calls its ``register(api)`` export.

    Returns:
        A list of ``ClientAssets``.

    .. versionadded:: 0.1
    """


@hookspec
def igym_register_routes(settings: Settings) -> list[Any]:
    """Register extra HTTP or WebSocket route handlers (Litestar handlers, controllers or routers).

    Called once when the app is built. The app's security headers apply to these routes' responses,
    and an exception they raise is answered with its status only (``{"status_code": 400, "detail":
    "Bad Request"}``, no message): to tell a client why, return a ``Response`` with that status.

    Args:
        settings: the process settings the app was built with.

    Returns:
        A list of Litestar route handlers, controllers or routers.

    .. versionadded:: 0.1
    """


# --- decisions: first non-None answer wins -----------------------------------------------------


@hookspec(firstresult=True)
def igym_resolve_participant(
    token: str | None, params: Mapping[str, str], known: Participant | None
) -> ParticipantIdentity | None:
    """Decide who a connecting browser is.

    Called for every ``hello``. The built-in answer resumes ``known`` when its recruitment ids
    agree with ``params``, and otherwise starts a new participant. Stops at first non-None result.

    Args:
        token: the token the browser presented, or ``None`` on a first visit.
        params: the page's URL query parameters (recruitment ids such as ``PROLIFIC_PID``).
        known: the participant that ``token`` belongs to, or ``None`` if the token is unknown.

    Returns:
        A ``ParticipantIdentity`` (resume a participant id, or start a new one with these recruitment
        ids), or ``None`` to let the next implementation decide.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def igym_resolve_condition(
    participant: Participant, experiment: Experiment, ledger: ConditionLedger
) -> str | None:
    """Assign a new participant to one of ``experiment.conditions``.

    Called once per participant, at join, only when the experiment has conditions. The built-in
    answer is balanced assignment in permuted blocks (``ledger.next_balanced()``), so counts across
    conditions never differ by more than one. Stops at first non-None result.

    Args:
        participant: the participant who just joined (recruitment ids in ``participant.params``).
        experiment: the experiment being served.
        ledger: the app's record of assignments so far.

    Returns:
        A condition name from ``experiment.conditions``, or ``None`` to let the next
        implementation decide.

    .. versionadded:: 0.1
    """


# --- events: notifications only ---------------------------------------------------------------


@hookspec
def igym_on_participant_joined(participant: Participant) -> None:
    """A new participant started the study (their first connection).

    Args:
        participant: the new participant; condition and scene sequence are already drawn.

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_scene_activated(participant: Participant, scene: SceneConfig, instance: int) -> None:
    """A participant entered a scene, and the records that say so are stored (while a data sink
    cannot write, this waits until a retry stores them; the participant's page waits too).

    Args:
        participant: who entered it.
        scene: the scene's config.
        instance: which repetition of this scene it is for this participant (0 for the first).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_participant_left(participant: Participant, reason: str) -> None:
    """A participant's connection ended before they finished.

    They may come back (reload, network loss) and resume.

    Args:
        participant: who left.
        reason: ``disconnected`` (socket closed) or ``superseded`` (another tab took over).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_participant_finished(participant: Participant) -> None:
    """A participant reached the end scene, and all their data is stored (durably, in every
    required sink; while one cannot write, this waits until a retry stores it).

    Args:
        participant: who finished (``participant.values`` holds the completion code, if any).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_game_started(game: GameInfo) -> None:
    """A game was created and its players seated (before its first episode starts).

    Args:
        game: the game's id, scene, instance and seats (humans with participant ids, bots with
            a description of their policy).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_episode_started(game: GameInfo, episode: int, seed: int) -> None:
    """An episode was reset and is about to be played (called once per episode, before its countdown).

    Args:
        game: the game.
        episode: the episode's number, 1 for the first.
        seed: the seed the env was reset with (derived from the experiment seed, game and episode).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_episode_ended(game: GameInfo, episode: int, summary: Mapping[str, Any]) -> None:
    """An episode ended; its records are written.

    Args:
        game: the game.
        episode: the episode's number, 1 for the first.
        summary: the episode record as written to the ``episodes`` data (steps, returns per agent,
            ``end_reason``, timing).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_game_ended(game: GameInfo, reason: str) -> None:
    """A game ended; its players are moved on to their next scene right after (or, for an
    ``abandoned`` game whose scene says ``on_abandon="end"``, their study ends there).

    Not called for the games of a server process that was killed: the next start completes their
    records (``reason="server_restart"``) without running them.

    Args:
        game: the game.
        reason: ``completed`` (all episodes played), ``abandoned`` (the game was paused with no
            human connected for the scene's ``abandon_after_s``), ``partner_left`` (a player of a
            multiplayer game left and the scene ends the game then), ``server_stopped`` or
            ``error``.

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_matched(game: GameInfo, waited_s: Mapping[str, float]) -> None:
    """Waiting participants were grouped into a multiplayer game (just before it starts).

    Args:
        game: the new game, with every member's seat.
        waited_s: participant id → how long they waited, in seconds.

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_waiting_timeout(participant: Participant, scene_id: str, waited_s: float, action: str) -> None:
    """A participant waited too long for a group (or their group could not be reassembled).

    Args:
        participant: who waited.
        scene_id: the game scene they waited for.
        waited_s: how long they waited, in seconds.
        action: what happens to them now: ``continue``, ``goto``, ``message`` or ``redirect``
            (the waiting room's ``on_timeout``).

    .. versionadded:: 0.1
    """


@hookspec
def igym_on_partner_left(game: GameInfo, participant_id: str, outcome: str) -> None:
    """A player of a multiplayer game stayed away longer than the reconnect grace period.

    Args:
        game: the game.
        participant_id: who left.
        outcome: ``bot`` (a bot took their seat and the others play on) or ``end`` (the game ends
            for everyone).

    .. versionadded:: 0.1
    """
