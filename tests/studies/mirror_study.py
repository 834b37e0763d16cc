"""Consent, one question, a code; the records go to a mirror sink (``tests/studies/mirror_sink.py``)
listed first, and to the built-in JSONL sink. ``mirror_required`` keeps the mirror required;
``experiment`` makes it a best-effort mirror (``required=False``)."""

from __future__ import annotations

from igym_core import EndScene, Experiment, StartScene, SurveyScene, TextQuestion
from igym_core.builtin.sink_jsonl import JsonlSinkConfig
from tests.studies.mirror_sink import MirrorSinkConfig

_scenes = (
    StartScene(scene_id="consent", body="Take part?"),
    SurveyScene(scene_id="about", questions=(TextQuestion(id="story", prompt="Tell us a story."),)),
    EndScene(scene_id="end", completion_code="auto"),
)

experiment = Experiment(
    experiment_id="mirror",
    seed=5,
    scenes=_scenes,
    sinks=(MirrorSinkConfig(required=False), JsonlSinkConfig()),
)
mirror_required = Experiment(
    experiment_id="mirror", seed=5, scenes=_scenes, sinks=(MirrorSinkConfig(), JsonlSinkConfig())
)
