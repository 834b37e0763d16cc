"""A render function that imports a part of igym-core the browser build does not have."""

from __future__ import annotations

from igym_core.data.recorder import utc_now_iso  # the server's recorder: not in the browser build
from igym_slime.render import draw as slime_draw

LOADED_AT = utc_now_iso()


def draw(env: object) -> list[object]:
    return slime_draw(env)  # type: ignore[arg-type]
