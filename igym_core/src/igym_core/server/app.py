"""``create_app``: settings + experiment → a Litestar app.

Run it with ``igym run module:experiment``, or ``IGYM_EXPERIMENT=module:experiment uvicorn --factory
igym_core.server.app:create_app``.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import structlog
from litestar import Litestar, MediaType, Response, get
from litestar.params import QueryParameter
from litestar.static_files import create_static_files_router

from igym_core import __version__
from igym_core.config.converter import make_converter
from igym_core.config.experiment import Experiment
from igym_core.config.loader import LoadedExperiment, load_experiment
from igym_core.data.interface import DataSink
from igym_core.data.recorder import Recorder, utc_now_iso
from igym_core.errors import ConfigError, ExperimentLoadError
from igym_core.logging import configure_logging
from igym_core.plugins.manager import IgymPluginManager, create_plugin_manager
from igym_core.protocol.messages import PROTOCOL_VERSION
from igym_core.scenes.stager import iter_scenes
from igym_core.server.socket import participant_socket
from igym_core.session.study import Study
from igym_core.settings import Settings

__all__ = ["CLIENT_DIR", "create_app"]

log = structlog.get_logger(__name__)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"

_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; media-src 'self' https:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
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
    converter = make_converter(plugins.registry)
    if experiment is None:
        target = os.environ.get("IGYM_EXPERIMENT")
        if not target:
            raise ExperimentLoadError(
                "No experiment given. Run `igym run module:experiment`, or set IGYM_EXPERIMENT."
            )
        experiment = target
    loaded = (
        experiment if isinstance(experiment, LoadedExperiment) else load_experiment(experiment, converter)
    )
    exp = loaded.experiment
    data_dir = (settings.data_dir / exp.experiment_id).resolve()
    sinks = _make_sinks(plugins, exp, data_dir)
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(3).hex()}"
    recorder = Recorder(
        sinks,
        base={"experiment_id": exp.experiment_id, "run_id": run_id},
        flush_interval_ms=settings.flush_interval_ms,
    )
    study = Study(
        experiment=exp,
        base_dir=loaded.base_dir,
        plugins=plugins,
        converter=converter,
        recorder=recorder,
        settings=settings,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        _write_snapshot(data_dir, run_id, loaded, plugins, converter, settings)
        for sink in sinks:
            events = sink.read("sessions")
            if events is not None:
                study.restore(events)
                # Games the previous process was running when it died: their records are completed
                # (durably, before anyone can join) and their players' game scenes told.
                if study.recover_games(sink.read):
                    await recorder.flush(durable=True)
                break
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
            try:
                yield
            finally:
                await study.games.stop()
        log.info("study_stopped", experiment_id=exp.experiment_id, records=recorder.records_written)

    assets = plugins.client_assets()
    boot = {
        "protocol": PROTOCOL_VERSION,
        "experiment_id": exp.experiment_id,
        "title": exp.title,
        "ws_path": "/ws",
        "modules": [f"/plugins/{a.plugin}/{a.entry}" for a in assets if a.entry],
    }
    page = _page_html(boot)

    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def participant_page() -> Response[str]:
        if not (CLIENT_DIR / "igym.js").is_file():
            return Response(
                _NOT_BUILT, media_type=MediaType.HTML, status_code=503, headers={"Cache-Control": "no-store"}
            )
        return Response(
            page,
            media_type=MediaType.HTML,
            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
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
    async def stats(from_sample: Annotated[int | None, QueryParameter()] = None) -> dict[str, Any]:
        """Live figures for operators and benchmarks: participants, games, tick timing, CPU.

        ``from_sample``: also summarise tick timing from that running sample count on.
        """
        cpu = time.process_time()  # before the summary's own work (it sorts the timing samples)
        return {
            **study.summary(since_sample=from_sample),
            "process_cpu_s": cpu,
            "uptime_s": round(time.monotonic() - started, 3),
        }

    handlers: list[Any] = [participant_page, health, stats, participant_socket]
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
    handlers.extend(plugins.routes(settings))
    app = Litestar(route_handlers=handlers, lifespan=[lifespan], debug=False, logging_config=None)
    app.state.settings = settings
    app.state.study = study
    app.state.plugins = plugins
    app.state.converter = converter
    app.state.data_dir = data_dir
    app.state.run_id = run_id
    return app


def _make_sinks(plugins: IgymPluginManager, exp: Experiment, data_dir: Path) -> list[DataSink]:
    configs = list(exp.sinks)
    if not configs:
        default = plugins.registry.data_sinks.get("jsonl") if "jsonl" in plugins.registry.data_sinks else None
        if default is None:
            raise ConfigError(
                "$.sinks: the experiment names no data sink and the built-in 'jsonl' sink is blocked; "
                "add a sink to the experiment's sinks.",
                title="No data sink",
            )
        configs = [default.config_type()]
    sinks = []
    for config in configs:
        sink_type = plugins.registry.data_sinks.get(config.kind)
        sinks.append(sink_type(config, data_dir))
    return sinks


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
        "settings": {"data_dir": str(settings.data_dir), "flush_interval_ms": settings.flush_interval_ms},
    }
    directory = data_dir / "snapshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_id}.json"
    path.write_text(json.dumps(snapshot, indent=2, default=str), encoding="utf-8")
    return path


def _package_versions() -> dict[str, str]:
    wanted = ("igym-core", "litestar", "uvicorn", "attrs", "cattrs", "pluggy", "msgpack", "structlog")
    out = {}
    for name in wanted:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("igym-"):
            out[name] = dist.version
    return out


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


_NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>igym: client not built</title>
<body><h1>The igym browser client is not built</h1>
<p>Run <code>make build</code> in the igym repository (it runs <code>npm ci</code> and
<code>npm run build</code> in <code>frontend/</code>), then reload.</p></body></html>"""
