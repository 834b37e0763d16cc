"""Serving a Unity scene's build: ``/unity/<scene_id>/<digest>/<file name>``.

Each file is sent as it is on disk (never compressed on the fly: igym's app has no compression
middleware, and these responses carry their own ``Content-Encoding``), with the content type of its
role (``application/wasm``, ``application/javascript``, ``application/octet-stream``), the
``Content-Encoding`` its suffix needs (``gzip`` for ``.gz``, ``br`` for ``.br``; none for
``.unityweb``, which the loader decompresses itself) and a year-long immutable cache: the URL carries
the first 16 hex digits of the file's SHA-256, so a new build gets new URLs. A URL whose digest or
name is not the current build's is a 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import File

from igym_unity.build import BuildFile

__all__ = ["PREFIX", "file_url", "streaming_assets_url", "unity_file", "unity_streaming_asset"]

PREFIX = "/unity"


def file_url(scene_id: str, file: BuildFile) -> str:
    """The URL a page loads ``file`` of scene ``scene_id``'s build from."""
    return f"{PREFIX}/{scene_id}/{file.url_key}/{file.name}"


def streaming_assets_url(scene_id: str) -> str:
    """The ``streamingAssetsUrl`` a page gives Unity's loader for scene ``scene_id``."""
    return f"{PREFIX}/{scene_id}/StreamingAssets"


def _build_of(request: Request[Any, Any, Any], scene_id: str) -> Any:
    """The discovered build of the experiment's Unity scene ``scene_id`` (None if there is none)."""
    from igym_core.scenes.stager import iter_scenes
    from igym_unity.config import UnityScene

    state = request.app.state
    builds: dict[str, Any] | None = getattr(state, "igym_unity_builds", None)
    if builds is None:
        study = state.study
        builds = {}
        for scene, _path in iter_scenes(study.experiment.scenes):
            if isinstance(scene, UnityScene) and scene.scene_id not in builds:
                builds[scene.scene_id] = study.prepared_scene(scene).build
        state.igym_unity_builds = builds
    return builds.get(scene_id)


def _not_found() -> Response[dict[str, Any]]:
    return Response({"status_code": 404, "detail": "Not Found"}, status_code=404)


@get(PREFIX + "/{scene_id:str}/{digest:str}/{name:str}", include_in_schema=False)
async def unity_file(
    request: Request[Any, Any, Any], scene_id: FromPath[str], digest: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    build = _build_of(request, scene_id)
    file = build.by_name(name) if build is not None else None
    if file is None or file.url_key != digest:
        return _not_found()
    headers = file.headers()
    media_type = headers.pop("Content-Type")
    return File(
        path=file.path,
        filename=file.name,
        content_disposition_type="inline",
        media_type=media_type,
        headers=headers,
    )


@get(PREFIX + "/{scene_id:str}/StreamingAssets/{path:path}", include_in_schema=False)
async def unity_streaming_asset(
    request: Request[Any, Any, Any], scene_id: FromPath[str], path: FromPath[str]
) -> Response[Any]:
    """A file of the export's ``StreamingAssets`` folder (asset bundles, videos, ...), as it is on
    disk; revalidated on each use (its URL carries no digest)."""
    build = _build_of(request, scene_id)
    folder = build.streaming_assets if build is not None else None
    if folder is None:
        return _not_found()
    root = folder.resolve()
    target = (root / path.lstrip("/")).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return _not_found()
    return File(
        path=target,
        filename=target.name,
        content_disposition_type="inline",
        headers={"Cache-Control": "no-cache"},
    )
