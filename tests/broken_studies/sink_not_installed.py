"""A sink config of a kind no installed plugin provides (igym run: "No data sink named 'sqlite'")."""

from typing import ClassVar

import attrs
from _parts import END, START

from igym_core import Experiment
from igym_core.data.interface import SinkConfig


@attrs.frozen(kw_only=True)
class SqliteSinkConfig(SinkConfig):
    kind: ClassVar[str] = "sqlite"


experiment = Experiment(experiment_id="broken", scenes=(START, END), sinks=(SqliteSinkConfig(),))
