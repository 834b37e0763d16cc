"""``create_app``: settings + experiment → a Litestar app.

Run it with ``igym run module:experiment``, or ``IGYM_EXPERIMENT=module:experiment uvicorn --factory
igym_core.server.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, MediaType, Request, Response, get
from litestar.static_files import create_static_files_router

from igym_core import __version__
from igym_core.admin import AdminService, admin_handlers
from igym_core.config.experiment import Experiment
from igym_core.config.loader import LoadedExperiment
from igym_core.data.recorder import Recorder, utc_now_iso
from igym_core.errors import ExperimentLoadError
from igym_core.logging import configure_logging
from igym_core.plugins.manager import IgymPluginManager, create_plugin_manager
from igym_core.protocol.messages import PROTOCOL_VERSION
from igym_core.scenes.stager import iter_scenes
from igym_core.server.security import (
    CONTENT_SECURITY_POLICY,
    add_security_headers,
    error_response,
    guard_paths,
    operator_token,
    page_content_security_policy,
    require_operator,
)
from igym_core.server.socket import participant_socket
from igym_core.serving import validate_for_serving
from igym_core.session.study import Study
from igym_core.settings import Settings, recorded_settings

__all__ = ["CLIENT_DIR", "create_app"]

log = structlog.get_logger(__name__)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"

_CSP = CONTENT_SECURITY_POLICY

#: igym's icon (a ball over a paddle), so that no participant's console shows a 404 for it.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="7" fill="#24476b"/>'
    '<circle cx="16" cy="12" r="5" fill="#f2c14e"/>'
    '<rect x="7" y="22" width="18" height="4" rx="2" fill="#ffffff"/>'
    "</svg>"
)


def create_app(
    settings: Settings | None = None,
    experiment: str | Experiment | LoadedExperiment | None = None,
    *,
    plugins: IgymPluginManager | None = None,
) -> Litestar:
    """Build the app. With no arguments, read ``IGYM_*`` settings and ``IGYM_EXPERIMENT``."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    if plugins is None:
        plugins = create_plugin_manager(
            blocked=settings.blocked_plugins,
            autoload=settings.autoload_plugins,
            extra=settings.extra_plugins,
            strict=settings.strict_plugins,
        )
    if experiment is None:
        target = os.environ.get("IGYM_EXPERIMENT")
        if not target:
            raise ExperimentLoadError(
                "No experiment given. Run `igym run module:experiment`, or set IGYM_EXPERIMENT."
            )
        experiment = target
    # The same checks `igym check` runs, and only those (igym_core/serving.py).
    plan = validate_for_serving(experiment, plugins, settings)
    converter = plan.converter
    loaded = plan.loaded
    exp = loaded.experiment
    for warning in plan.warnings:
        log.warning("experiment_warned", warning=warning)
    data_dir = (settings.data_dir / exp.experiment_id).resolve()
    sinks = plan.open_sinks(data_dir)
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(3).hex()}"
    recorder = Recorder(
        sinks,
        base={"experiment_id": exp.experiment_id, "run_id": run_id},
        flush_interval_ms=settings.flush_interval_ms,
        reminder_interval_s=settings.save_failure_reminder_s,
        max_unsaved_bytes=settings.max_unsaved_bytes,
    )
    study = Study(
        experiment=exp,
        base_dir=loaded.base_dir,
        plugins=plugins,
        converter=converter,
        recorder=recorder,
        settings=settings,
        views=plan.views,
        prepared=plan.prepared,
    )

    # The admin dashboard (/admin; docs/admin.md): its token, sessions, live view and actions.
    admin = AdminService(study, settings, data_dir, run_id)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        _write_snapshot(data_dir, run_id, loaded, plugins, converter, settings)
        events = recorder.read("sessions")
        if events is not None:
            study.restore(events)
            # Games the previous process was running when it died: their records are completed
            # (durably, before anyone can join) and their players' game scenes told.
            if study.recover_games(recorder.read):
                await recorder.flush(durable=True)
        log.info(
            "study_started",
            experiment_id=exp.experiment_id,
            data_dir=str(data_dir),
            run_id=run_id,
            client_built=(CLIENT_DIR / "igym.js").is_file(),
        )
        # Everything loaded so far (modules, the app, prepared scenes) lives as long as the process:
        # move it out of the collector's view, so that the full collections a busy game server
        # triggers scan only what games create, and stay short (they pause every game).
        gc.collect()
        gc.freeze()
        async with recorder:
            # Finished and abandoned participants leave memory (IGYM_PARTICIPANT_EVICT_*_S).
            evictions = asyncio.create_task(study.evict_periodically(), name="igym-evictions")
            try:
                yield
            finally:
                evictions.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await evictions
                await study.saves.stop()
                await study.games.stop()
        log.info("study_stopped", experiment_id=exp.experiment_id, records=recorder.records_written)

    assets = plan.client_assets
    boot = {
        "protocol": PROTOCOL_VERSION,
        "experiment_id": exp.experiment_id,
        "title": exp.title,
        "ws_path": "/ws",
        "modules": [f"/plugins/{a.plugin}/{a.entry}" for a in assets if a.entry],
    }
    page = _page_html(boot)

    page_csp = page_content_security_policy(
        exp.recruitment.form_targets() if exp.recruitment else (), plan.script_sources
    )

    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def participant_page() -> Response[str]:
        if not (CLIENT_DIR / "igym.js").is_file():
            return Response(
                _not_built_page(),
                media_type=MediaType.HTML,
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        return Response(
            page,
            media_type=MediaType.HTML,
            headers={"Content-Security-Policy": page_csp, "Cache-Control": "no-store"},
        )

    started = time.monotonic()

    @get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "experiment_id": exp.experiment_id,
            "version": __version__,
            "uptime_s": round(time.monotonic() - started, 1),
        }

    @get("/stats", include_in_schema=False)
    async def stats(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Live figures for operators and benchmarks: participants, games, tick timing, CPU.

        Needs the operator token. Costs the same whatever the number of participants and the
        server's age: the counts are kept up to date as things happen and tick timing is a fixed
        histogram (see ``Study.summary``).
        """
        require_operator(request)
        cpu = time.process_time()  # before the summary's own work
        body = {
            **study.summary(),
            "process_cpu_s": cpu,
            "uptime_s": round(time.monotonic() - started, 3),
        }
        return Response(body, headers={"Cache-Control": "no-store"})

    @get(["/favicon.ico", "/favicon.svg"], include_in_schema=False)
    async def favicon() -> Response[str]:
        return Response(
            FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
        )

    handlers: list[Any] = [participant_page, health, stats, favicon, participant_socket]
    handlers.append(create_static_files_router(path="/client", directories=[CLIENT_DIR], name="client"))
    for asset in assets:
        handlers.append(
            create_static_files_router(
                path=f"/plugins/{asset.plugin}",
                directories=[Path(str(asset.directory))],
                name=f"plugin-{asset.plugin}",
            )
        )
    for scene, _path in iter_scenes(exp.scenes):
        folder = scene.served_directory(loaded.base_dir)
        if folder is not None:
            handlers.append(
                create_static_files_router(
                    path=f"/scene-assets/{scene.scene_id}",
                    directories=[folder],
                    name=f"assets-{scene.scene_id}",
                )
            )
    handlers.extend(admin_handlers())
    handlers.extend(plan.routes)
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan, admin.lifespan],  # the dashboard's after the study's restore
        debug=False,
        logging_config=None,
        openapi_config=None,  # no /schema pages (they load their scripts from a CDN)
        exception_handlers={Exception: error_response},
        before_send=[add_security_headers],
    )
    app.asgi_handler = guard_paths(app.asgi_handler, dev=settings.dev)
    app.state.settings = settings
    #: The bearer token of operator endpoints (/stats; later the admin dashboard): one place only.
    app.state.operator_token = operator_token(settings)
    if settings.operator_token is None:
        log.info("operator_token_generated", detail="igym run prints it; IGYM_OPERATOR_TOKEN chooses it")
    app.state.study = study
    app.state.admin = admin
    if admin.auth.generated:
        log.info("admin_token_generated", detail="igym run prints it once; IGYM_ADMIN_TOKEN chooses it")
    #: Decodes the client's messages: the built-in ones and those of the installed runtimes.
    app.state.messages = plan.messages
    app.state.plugins = plugins
    app.state.converter = converter
    app.state.data_dir = data_dir
    app.state.run_id = run_id
    return app


def _not_json(value: Any) -> Any:
    from igym_core.envs import NOT_LOADABLE, callable_ref

    return {NOT_LOADABLE: callable_ref(value)}


def _write_snapshot(
    data_dir: Path,
    run_id: str,
    loaded: LoadedExperiment,
    plugins: IgymPluginManager,
    converter: Any,
    settings: Settings,
) -> Path:
    """Write what is needed to know, later, exactly what ran: config, plugins, versions, commit."""
    snapshot = {
        "run_id": run_id,
        "started_at": utc_now_iso(),
        "experiment_id": loaded.experiment.experiment_id,
        "source": loaded.source,
        "experiment": converter.unstructure(loaded.experiment),
        "plugins": [
            {"name": i.name, "distribution": i.distribution, "version": i.version, "registers": i.registers}
            for i in plugins.plugin_info()
        ],
        "packages": _package_versions(),
        "git_commit": _git_commit(loaded.base_dir),
        "python": sys.version,
        "platform": platform.platform(),
        "igym_core_version": __version__,
        # Every setting but secrets: which limits (IGYM_MAX_*, budgets, timeouts) this run applied.
        "settings": recorded_settings(settings),
        # Relative files the experiment names (models, assets) are relative to this directory.
        "base_dir": str(loaded.base_dir),
    }
    directory = data_dir / "snapshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_id}.json"
    # The scene types' converter hooks write Python objects by import path; anything else that is
    # not JSON is marked as such, never written as a silent str(obj).
    path.write_text(json.dumps(snapshot, indent=2, default=_not_json), encoding="utf-8")
    return path


def _package_versions() -> dict[str, str]:
    from igym_core.server.provenance import package_versions

    return package_versions()


def _git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    commit = result.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=directory, capture_output=True, text=True, timeout=5
    )
    return f"{commit}-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else commit


def _page_html(boot: dict[str, Any]) -> str:
    blob = json.dumps(boot).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = (boot.get("title") or "Study").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/client/igym.css">
<script id="igym-boot" type="application/json">{blob}</script>
<script type="module" src="/client/igym.js"></script>
</head>
<body>
<div id="igym-root"><noscript>This study needs JavaScript.
Please enable it and reload the page.</noscript></div>
</body>
</html>
"""


def client_missing_help(*, show_path: bool = True) -> str:
    """What to do when this installation has no browser client: in a checkout, and for a pip user.

    ``show_path=False`` for the page anyone can load: it does not reveal where igym is installed.
    """
    where = f" (no {CLIENT_DIR / 'igym.js'})" if show_path else ""
    checkout = CLIENT_DIR.parents[3]  # igym_core/src/igym_core/client -> the repository
    if (checkout / "frontend" / "package.json").is_file():
        return (
            f"The browser client is not built{where}. In this igym checkout, run `make build` "
            "(npm ci and npm run build in frontend/), then reload."
        )
    return (
        f"This installation of igym-core has no browser client{where}, so it cannot serve pages. "
        "Reinstall igym-core from a wheel built with `uv build --package igym-core` in an igym "
        "checkout with node/npm (the build makes the client), or from a published release."
    )


def _not_built_page() -> str:
    text = client_missing_help(show_path=False)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>igym: no browser client</title>\n'
        f"<body><h1>The igym browser client is missing</h1>\n<p>{text}</p></body></html>"
    )
