"""What every scene type implements.

A scene type is a frozen attrs class deriving from :class:`SceneConfig` with a unique ``kind``. The
class is both what the researcher writes in the experiment and what the server asks how to behave:
what the browser receives (:meth:`SceneConfig.client_view`), which answers are acceptable
(:meth:`SceneConfig.validate_response`), which per-participant values it needs
(:meth:`SceneConfig.client_context`), and how answers become long-format rows
(:meth:`SceneConfig.response_rows`). The browser half is a renderer registered under the same
``kind`` by a client module (see ``docs/protocol.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from igym_core.config.urls import UrlTemplate
from igym_core.config.validators import slug

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["PrepareContext", "SceneConfig", "SceneContext", "SceneJudgement", "StagerNode"]


@attrs.frozen(kw_only=True)
class StagerNode:
    """Anything that may stand in an experiment's ``scenes``: a scene, or a stager element."""

    kind: ClassVar[str] = "stager_node"


@attrs.frozen(kw_only=True)
class SceneContext:
    """Per-participant facts a scene may use to compute its client context."""

    participant_id: str
    params: Mapping[str, str]
    condition: str | None
    instance: int
    position: int
    values: Mapping[str, Any] = attrs.field(factory=dict)
    """Values other scenes recorded for this participant, such as ``completion_code``."""
    user_agent: str | None = None
    """The ``User-Agent`` header of the participant's current connection (None: not known)."""
    outcome: str = "completed"
    """How the participant got here: ``completed``, ``game_abandoned`` once they left a game scene
    whose ``on_abandon`` let them continue, ``waiting_timeout`` once a waiting room's timeout
    moved them on (see docs/games.md)."""
    value_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    """Every value the experiment's scenes declare (:meth:`SceneConfig.participant_values`), with
    the value shown to a participant who never got it."""


@attrs.frozen(kw_only=True)
class PrepareContext:
    """What :meth:`SceneConfig.prepare` may use: where files are and what is installed."""

    base_dir: Path
    registry: Any
    """The app's :class:`~igym_core.plugins.registry.Registry`."""
    converter: Any
    experiment_seed: int


@attrs.frozen(kw_only=True)
class SceneConfig(StagerNode):
    """Base class of every scene type. Subclass it with a new ``kind`` to add one."""

    kind: ClassVar[str] = "scene"
    terminal: ClassVar[bool] = False
    """True for scenes that end the study (the participant stays there; data is confirmed first)."""

    scene_id: str = attrs.field(validator=slug)
    """Names the scene in the data (``scene_id`` of every record) and in other scenes' fields; unique in the
    experiment; lowercase letters, digits, ``_`` and ``-``."""

    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        """Register cattrs hooks for types this scene type's config uses (called once per app)."""

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        """What the browser receives for this scene (``scene`` in the protocol).

        Called once per scene when the server starts (the result is cached). ``base_dir`` is the
        directory of the experiment file, for files the scene names. The default is the config as
        the converter unstructures it, tagged with ``kind``. Override to send a schema the client
        understands rather than every attribute.
        """
        view = converter.unstructure(self, unstructure_as=StagerNode)
        return dict(view)

    def prepare(self, ctx: PrepareContext) -> Any:
        """Check the scene against what is installed and load what it needs, once, at start.

        Called when the server starts (and by ``igym check``), so that a broken game scene (an env
        that cannot be built, a seat that does not exist) fails before the first participant
        arrives. The result is cached and handed to the scene's runtime. The default does nothing.
        """
        return None

    def url_templates(self) -> dict[str, UrlTemplate]:
        """URL templates this scene fills per participant, as ``{field path: template}``.

        At start, each placeholder is checked to have a value for every participant (see
        :mod:`igym_core.config.urls`); list every template field here so that a misspelt
        placeholder fails ``igym check`` instead of going out empty.
        """
        return {}

    def participant_values(self) -> dict[str, Any]:
        """Values this scene gives the participants who play it (for later scenes, such as an end
        scene's ``values_text``), each with the value shown to one who never got it (a scene they
        skipped): ``{"maze_bonus": 0.0}``. Never None or an empty string."""
        return {}

    def value_texts(self) -> dict[str, str]:
        """Texts this scene fills with the participant's values, as ``{field path: text}`` (see
        :mod:`igym_core.config.value_text`); each placeholder is checked to be a declared value."""
        return {}

    def scene_references(self) -> dict[str, str]:
        """Other scenes this one names, as ``{field path: scene id}`` (checked to exist at start)."""
        return {}

    def game_runtime(self) -> str | None:
        """The runtime kind that runs this scene's game, or None for scenes that are not games."""
        return None

    def served_directory(self, base_dir: Path) -> Path | None:
        """A folder of files the browser needs for this scene, served at ``/scene-assets/<scene_id>/``."""
        return None

    def new_values(self, ctx: SceneContext) -> dict[str, Any]:
        """Values drawn once per participant when they first enter this scene, and recorded.

        They are kept in ``participant.values`` and passed back in ``SceneContext.values``.
        """
        return {}

    def client_context(self, ctx: SceneContext) -> dict[str, Any]:
        """Per-participant values sent with the scene (``context`` in the protocol)."""
        return {}

    def answer_ids(self) -> frozenset[str] | None:
        """The answer keys this scene accepts in ``draft`` and ``submit``, or None for "not declared".

        The server refuses a submission or draft with any other key before
        :meth:`validate_response` sees it (naming a few of them, counting the rest), so that no
        participant can make it store or echo keys nobody asked for. The default: no keys for a
        scene type that keeps the default :meth:`validate_response` (it takes no answers); None for
        one that overrides it without declaring its keys (its drafts are then limited by size only).
        """
        if type(self).validate_response is SceneConfig.validate_response:
            return frozenset()
        return None

    def min_time_on_page_ms(self) -> int:
        """How long after entering this scene a participant may submit it (0: at once).

        The page enforces it for the participant; the server refuses an earlier submit.
        """
        return 0

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        """Check submitted answers; return ``{field: message}`` for each problem (empty when valid).

        The default accepts only an empty submission (a scene with nothing to answer).
        """
        if answers:
            return {key: "This scene takes no answers." for key in answers}
        return {}

    def response_rows(self, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Long-format rows for valid answers: one ``{"question_id", "value"}`` per answer."""
        return [{"question_id": key, "value": value} for key, value in answers.items()]

    def judge_response(self, answers: Mapping[str, Any], ctx: SceneContext) -> SceneJudgement | None:
        """After valid answers are recorded: a judgement the study records (``event`` with
        ``detail``) and, with ``exit_outcome``, the participant's way out of the study (to the
        end scene, with ``reasons`` shown in plain words). None (the default): just go on."""
        return None


@attrs.frozen(kw_only=True)
class SceneJudgement:
    """What :meth:`SceneConfig.judge_response` decided (an entry screening's result)."""

    event: str
    detail: Mapping[str, Any] = attrs.field(factory=dict)
    exit_outcome: str | None = None
    """None: the participant goes on; else their outcome (``screened_out``) and they go to the end."""
    reasons: tuple[str, ...] = ()
    """Why, in plain words for the participant (shown on the end page)."""
