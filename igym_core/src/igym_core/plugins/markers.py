"""The hook markers. One project name, ``igym``, for markers and the entry-point group."""

import pluggy

PROJECT_NAME = "igym"
ENTRY_POINT_GROUP = "igym"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
