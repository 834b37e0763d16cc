"""igym's own package index and the runtime's file routes (all under ``/plugins/pyodide_p2p/``).

- ``manifest.json``: what the browser runtime loads, with URLs and sizes (the loader's progress bar
  shows them): Pyodide's files, micropip, the runtime's own files, and per ``runtime="pyodide"``
  game scene the wheels to install (in order), what to import for each role and the packages to
  take from the extra index. Revalidated on every use (``no-cache``): the URLs in it change when a
  file does.
- ``pyodide/<hash>/<name>``, ``static/<hash>/<name>``, ``files/<sha256>/<wheel>``: the files, by
  content hash, cached for a year (``immutable``), with their media types (``.mjs``
  ``text/javascript``, ``.wasm`` ``application/wasm``).
- ``simple/`` and ``simple/<project>/``: a PEP 503 index (HTML; PEP 691 JSON for a client that asks
  for ``application/vnd.pypi.simple.v1+json``, as micropip does) of micropip and every wheel igym
  built for the experiment's browser-run scenes.

The wheels are built when ``igym run`` starts, by its check of each browser-run scene
(``Runtime.check_scene`` → :func:`igym_pyodide_p2p.packages.check_scene_packages`, which also
refuses a scene whose packages cannot be served); the first request here hashes Pyodide's files and
collects them (in a thread, once per app; it builds whatever that check did not).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import structlog
from litestar import Request, Response, Router, get
from litestar.params import FromPath
from litestar.response import File

from igym_pyodide_p2p.assets import (
    IMMUTABLE,
    PREFIX,
    FileSet,
    content_security_policy,
    media_type,
    pyodide_files,
    runtime_static_files,
)
from igym_pyodide_p2p.packages import PackageError, Wheel, normalize, scene_packages

if TYPE_CHECKING:
    from igym_core.settings import Settings

__all__ = ["PackageService", "package_routes"]

log = structlog.get_logger(__name__)

RUNTIME_KIND = "pyodide"
PEP691 = "application/vnd.pypi.simple.v1+json"


class PackageService:
    """Everything the routes serve, built once per app on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.extra_index_url: str | None = getattr(settings, "pyodide_extra_index_url", None)
        self.csp = content_security_policy(self.extra_index_url)
        self.pyodide: FileSet
        self.static: FileSet
        self.micropip: Wheel
        self.wheels: dict[str, Wheel] = {}  # sha256 → wheel
        self.projects: dict[str, list[Wheel]] = {}  # normalized project → wheels
        self.manifest: dict[str, Any] = {}

    def build(self, study: Any) -> None:
        """Hash the files, work out and build every browser-run scene's wheels, write the manifest."""
        started = time.perf_counter()
        self.pyodide, micropip_path = pyodide_files()
        self.static = runtime_static_files()
        self.micropip = _wheel_from_file(micropip_path)
        self._add(self.micropip)
        scenes: dict[str, Any] = {}
        for scene, prepared in _browser_scenes(study):
            # Built at start by igym run's check of the scene (Runtime.check_scene), or here.
            plan, wheels = scene_packages(scene, prepared, self.settings)
            if plan.problems:
                # igym run refused these already; a study built without that check must not serve
                # half a scene.
                raise PackageError("; ".join(plan.problems))
            for wheel in wheels:
                self._add(wheel)
            sources = {normalize(p.project): p for p in plan.packages}
            scenes[scene.scene_id] = {
                "imports": dict(plan.imports),
                "wheels": [
                    {
                        "project": w.project,
                        "version": w.version,
                        "filename": w.filename,
                        "url": self.wheel_url(w),
                        "bytes": len(w.data),
                        "sha256": w.sha256,
                        "source": sources[normalize(w.project)].describe(paths=False),
                    }
                    for w in wheels
                ],
                "extra": [
                    {"project": p.project, "server_version": p.version}
                    for p in plan.packages
                    if p.source == "extra-index"
                ],
                "bytes": sum(len(w.data) for w in wheels),
            }
        self.manifest = {
            "pyodide": {
                "version": _pyodide_version(self.pyodide.folder),
                "index_url": self.pyodide.base_url,
                "module_url": self.pyodide.url("pyodide.mjs"),
                "files": self.pyodide.listing(),
                "bytes": self.pyodide.total_bytes,
                "gzip_bytes": sum(
                    self.pyodide.gzipped.get(n, self.pyodide.sizes[n]) for n in self.pyodide.names
                ),
            },
            "micropip": {
                "url": self.wheel_url(self.micropip),
                "bytes": len(self.micropip.data),
                "sha256": self.micropip.sha256,
            },
            "static": {"base_url": self.static.base_url, "files": self.static.listing()},
            # Without a trailing slash: micropip appends "/<project>/".
            "index_url": f"{PREFIX}/simple",
            "extra_index_url": self.extra_index_url,
            "scenes": scenes,
        }
        log.info(
            "pyodide_packages_built",
            scenes=sorted(scenes),
            wheels=len(self.wheels),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _add(self, wheel: Wheel) -> None:
        if wheel.sha256 in self.wheels:
            return
        self.wheels[wheel.sha256] = wheel
        self.projects.setdefault(normalize(wheel.project), []).append(wheel)

    @staticmethod
    def wheel_url(wheel: Wheel) -> str:
        return f"{PREFIX}/files/{wheel.sha256}/{wheel.filename}"


def _wheel_from_file(path: Path) -> Wheel:
    import hashlib

    data = path.read_bytes()
    name, version = path.name.split("-")[:2]
    return Wheel(
        project=name, version=version, filename=path.name, data=data, sha256=hashlib.sha256(data).hexdigest()
    )


def _pyodide_version(folder: Path) -> str | None:
    version_file = folder / "VERSION"
    if not version_file.is_file():
        return None
    first = version_file.read_text(encoding="utf-8").splitlines()[0]
    return first.removeprefix("pyodide ").strip()


def _browser_scenes(study: Any) -> list[tuple[Any, Any]]:
    from igym_core.scenes.stager import iter_scenes

    found: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    for scene, _path in iter_scenes(study.experiment.scenes):
        if id(scene) in seen or scene.game_runtime() != RUNTIME_KIND:
            continue
        seen.add(id(scene))
        found.append((scene, study.prepared_scene(scene)))
    return found


async def _service(request: Request[Any, Any, Any]) -> PackageService:
    """The app's :class:`PackageService`, built by the first request that needs it."""
    state = request.app.state
    service = getattr(state, "pyodide_packages", None)
    if service is not None and service.manifest:
        return service  # type: ignore[no-any-return]
    lock = getattr(state, "pyodide_packages_lock", None)
    if lock is None:
        lock = state.pyodide_packages_lock = asyncio.Lock()
    async with lock:
        service = getattr(state, "pyodide_packages", None)
        if service is None or not service.manifest:
            service = PackageService(state.settings)
            try:
                await anyio.to_thread.run_sync(service.build, state.study)
            except Exception:
                log.exception("pyodide_packages_failed")
                raise
            state.pyodide_packages = service
    return service  # type: ignore[no-any-return]


def _immutable_headers(service: PackageService) -> dict[str, str]:
    return {"Cache-Control": IMMUTABLE, "Content-Security-Policy": service.csp}


def _not_found() -> Response[dict[str, Any]]:
    return Response({"status_code": 404, "detail": "Not Found"}, status_code=404)


@get("/manifest.json", include_in_schema=False)
async def manifest(request: Request[Any, Any, Any]) -> Response[Any]:
    service = await _service(request)
    return Response(service.manifest, media_type="application/json", headers={"Cache-Control": "no-cache"})


def _file(
    request: Request[Any, Any, Any], service: PackageService, files_set: FileSet, digest: str, name: str
) -> Response[Any]:
    gzip = "gzip" in request.headers.get("accept-encoding", "")
    path = files_set.path(digest, name, gzip=gzip)
    if path is None:
        return _not_found()
    headers = _immutable_headers(service)
    if name in files_set.gzipped:
        headers["Vary"] = "Accept-Encoding"
        if path.name.endswith(".gz"):
            headers["Content-Encoding"] = "gzip"
    return File(
        path=path,
        filename=name,
        content_disposition_type="inline",
        media_type=media_type(name),
        headers=headers,
    )


@get("/pyodide/{digest:str}/{name:str}", include_in_schema=False)
async def pyodide_file(
    request: Request[Any, Any, Any], digest: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    service = await _service(request)
    return _file(request, service, service.pyodide, digest, name)


@get("/static/{digest:str}/{name:str}", include_in_schema=False)
async def static_file(
    request: Request[Any, Any, Any], digest: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    service = await _service(request)
    return _file(request, service, service.static, digest, name)


@get("/files/{sha256:str}/{filename:str}", include_in_schema=False)
async def wheel_file(
    request: Request[Any, Any, Any], sha256: FromPath[str], filename: FromPath[str]
) -> Response[Any]:
    service = await _service(request)
    wheel = service.wheels.get(sha256)
    if wheel is None or wheel.filename != filename:
        return _not_found()
    return Response(wheel.data, media_type=media_type(filename), headers=_immutable_headers(service))


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return PEP691 in request.headers.get("accept", "")


@get(["/simple", "/simple/"], include_in_schema=False)
async def simple_root(request: Request[Any, Any, Any]) -> Response[Any]:
    service = await _service(request)
    names = sorted(service.projects)
    if _wants_json(request):
        body = {"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in names]}
        return Response(json.dumps(body), media_type=PEP691, headers={"Cache-Control": "no-cache"})
    links = "\n".join(f'<a href="{PREFIX}/simple/{n}/">{html.escape(n)}</a><br>' for n in names)
    page = f"<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n{links}\n</body></html>\n"
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


@get(["/simple/{project:str}", "/simple/{project:str}/"], include_in_schema=False)
async def simple_project(request: Request[Any, Any, Any], project: FromPath[str]) -> Response[Any]:
    service = await _service(request)
    wheels = service.projects.get(normalize(project))
    if not wheels:
        return _not_found()
    name = normalize(project)
    # Absolute URLs: micropip does not resolve a PEP 691 file URL against the index page's.
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if _wants_json(request):
        body = {
            "meta": {"api-version": "1.0"},
            "name": name,
            "versions": sorted({w.version for w in wheels}),
            "files": [
                {"filename": w.filename, "url": origin + service.wheel_url(w), "hashes": {"sha256": w.sha256}}
                for w in wheels
            ],
        }
        return Response(json.dumps(body), media_type=PEP691, headers={"Cache-Control": "no-cache"})
    links = "\n".join(
        f'<a href="{origin}{service.wheel_url(w)}#sha256={w.sha256}">{html.escape(w.filename)}</a><br>'
        for w in wheels
    )
    page = (
        f"<!DOCTYPE html>\n<html><head><title>Links for {html.escape(name)}</title></head><body>\n"
        f"<h1>Links for {html.escape(name)}</h1>\n{links}\n</body></html>\n"
    )
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


def package_routes() -> Router:
    """The routes above, under ``/plugins/pyodide_p2p``."""
    return Router(
        path=PREFIX,
        route_handlers=[manifest, pyodide_file, static_file, wheel_file, simple_root, simple_project],
    )
