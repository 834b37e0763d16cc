"""Consent, then the end scene, with the JSONL sink and a sink whose durable flush is slow
(``tests/studies/slow_sink.py``): the consent's submit takes about half a second."""

from __future__ import annotations

from igym_core import EndScene, Experiment, StartScene
from igym_core.builtin.sink_jsonl import JsonlSinkConfig
from tests.studies.slow_sink import SlowSinkConfig

experiment = Experiment(
    experiment_id="slow_submit",
    seed=3,
    scenes=(StartScene(scene_id="consent", body="Take part?"), EndScene(scene_id="end")),
    sinks=(JsonlSinkConfig(), SlowSinkConfig()),
)
