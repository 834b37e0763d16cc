"""Consent, one text question, a completion code: the study of the full-disk browser test
(``tests/e2e/test_saving_browser.py``)."""

from __future__ import annotations

from igym_core import EndScene, Experiment, StartScene, SurveyScene, TextQuestion

experiment = Experiment(
    experiment_id="saving_browser",
    seed=4,
    scenes=(
        StartScene(scene_id="consent", body="Take part?"),
        SurveyScene(
            scene_id="about",
            title="About you",
            questions=(TextQuestion(id="story", prompt="Tell us a story."),),
        ),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)
