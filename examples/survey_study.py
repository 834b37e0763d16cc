"""The example survey study, importable by path: ``igym run examples/survey_study.py:experiment``.

The study itself ships inside igym-core (``igym_core.examples.survey_study``); copy that file to
start your own.
"""

from igym_core.examples.survey_study import experiment

__all__ = ["experiment"]
