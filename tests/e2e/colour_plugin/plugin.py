from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from igym_core import EndScene, Experiment, SceneConfig, StaticScene, hookimpl
from igym_core.plugins.assets import ClientAssets

COLOURS = ("red", "green", "blue")


@attrs.frozen(kw_only=True)
class ColourPick(SceneConfig):
    """Pick a colour by clicking a swatch."""

    kind: ClassVar[str] = "colour_pick"
    prompt: str

    def client_view(self, converter: Any, base_dir: Path) -> dict[str, Any]:
        return {"kind": self.kind, "scene_id": self.scene_id, "prompt": self.prompt, "colours": list(COLOURS)}

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        if answers.get("colour") not in COLOURS or set(answers) != {"colour"}:
            return {"colour": "Pick one of the colours."}
        return {}


@hookimpl
def igym_register_scene_types() -> list[type[SceneConfig]]:
    return [ColourPick]


@hookimpl
def igym_register_client_assets() -> list[ClientAssets]:
    return [ClientAssets(plugin="colour_pick", directory=Path(__file__).parent / "static", entry="colour.js")]


experiment = Experiment(
    experiment_id="colour_study",
    title="Colours",
    scenes=(
        StaticScene(scene_id="hello", body="A scene type from a plugin comes next."),
        ColourPick(scene_id="favourite", prompt="Which colour do you like best?"),
        EndScene(scene_id="end", completion_code="COLOUR1"),
    ),
)
