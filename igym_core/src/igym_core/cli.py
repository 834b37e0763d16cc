"""The ``igym`` command: ``run``, ``check``, ``plugins``, ``schema``, and the subcommands plugins add."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from igym_core.errors import IgymError

__all__ = ["main"]

EXPERIMENT_HELP = (
    "module:attribute, path/to/file.py:attribute, or a .toml/.json file; without :attribute, the "
    "module's one Experiment"
)


def _settings(args: argparse.Namespace):
    from igym_core.settings import Settings

    return Settings.from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        log_format=getattr(args, "log_format", None),
        blocked_plugins=tuple(args.block) if getattr(args, "block", None) else None,
        extra_plugins=tuple(args.plugin) if getattr(args, "plugin", None) else None,
        dev=getattr(args, "dev", None),
    )


def _plugins(settings, *, quiet: bool = False):
    from igym_core.plugins.manager import create_plugin_manager

    return create_plugin_manager(
        blocked=settings.blocked_plugins,
        autoload=settings.autoload_plugins,
        extra=settings.extra_plugins,
        strict=settings.strict_plugins,
        quiet=quiet,
    )


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from igym_core.server.app import CLIENT_DIR, client_missing_help, create_app

    settings = _settings(args)
    app = create_app(settings, args.experiment)
    if not (CLIENT_DIR / "igym.js").is_file():
        sys.stderr.write(f"warning: participants will see an error page. {client_missing_help()}\n")
    sys.stderr.write(
        f"igym: serving {app.state.study.experiment.experiment_id} "
        f"at http://{settings.host}:{settings.port}/ (data in {app.state.data_dir})\n"
    )
    if settings.operator_token is None:
        # Printed once, here only (never logged): the operator pages need it.
        sys.stderr.write(
            f"igym: operator token for /stats (this run only; set IGYM_OPERATOR_TOKEN to choose one): "
            f"{app.state.operator_token}\n"
        )
    if app.state.admin.auth.generated:
        # Printed once, here only (never logged): the dashboard's login needs it.
        sys.stderr.write(
            f"igym: admin token for http://{settings.host}:{settings.port}/admin (this run only; set "
            f"IGYM_ADMIN_TOKEN to choose one): {app.state.admin.auth.token}\n"
        )
    _raise_open_files_limit()
    from igym_core.server.budget import InboundLimits
    from igym_core.server.http_protocol import http_protocol
    from igym_core.server.ws_protocol import IgymWebSocketProtocol

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # uvicorn's sans-I/O WebSocket protocol plus igym's direct path for game traffic and the
        # per-connection budgets, without per-message compression (igym_core/server/ws_protocol.py).
        ws=IgymWebSocketProtocol.configured(InboundLimits.from_settings(settings)),
        ws_per_message_deflate=False,
        ws_max_size=settings.max_message_bytes + 4096,
        # Keepalive: a WebSocket whose peer stops answering pings (gone without closing) is closed
        # after ws_ping_interval_s + ws_ping_timeout_s; browsers answer pings by themselves.
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=5,
        # Slow or idle connections are closed (see igym_core/server/http_protocol.py).
        http=http_protocol(
            header_timeout_s=settings.header_timeout_s, idle_timeout_s=settings.idle_timeout_s
        ),
        timeout_keep_alive=settings.idle_timeout_s,
        server_header=False,  # no "server: uvicorn" on every response
    )
    return 0


def _raise_open_files_limit() -> None:
    """Raise the soft limit on open files to the hard limit.

    Every participant holds a socket; a soft limit of 1,024 (a common default) caps a server at
    fewer connections than a busy study and its stragglers can have open. The hard limit is what
    the operator (or systemd's ``LimitNOFILE``) allows; raising the soft one to it needs no privilege.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover (Windows)
        return
    import structlog

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            structlog.get_logger(__name__).warning("open_files_limit_not_raised", soft=soft, hard=hard)
            return
        structlog.get_logger(__name__).info("open_files_limit_raised", old=soft, new=target)


def cmd_check(args: argparse.Namespace) -> int:
    from igym_core.logging import configure_logging
    from igym_core.scenes.stager import iter_scenes
    from igym_core.serving import validate_for_serving

    settings = _settings(args)
    configure_logging("console", "warning")
    plugins = _plugins(settings)
    # Exactly what `igym run` checks before serving (igym_core/serving.py), without serving.
    plan = validate_for_serving(args.experiment, plugins, settings)
    exp = plan.experiment
    scenes = iter_scenes(exp.scenes)
    kinds = sorted({scene.kind for scene, _ in scenes})
    sys.stdout.write(
        f"OK: {exp.experiment_id}: {len(scenes)} scenes ({', '.join(kinds)})"
        + (f", conditions {', '.join(exp.conditions)}" if exp.conditions else "")
        + "\n"
    )
    for note in plan.notes:  # what the game scenes' runtimes will need, and from where
        sys.stdout.write(f"note: {note}\n")
    for warning in plan.warnings:  # served, but likely not what the researcher wants
        sys.stdout.write(f"warning: {warning}\n")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from igym_core.logging import configure_logging

    settings = _settings(args)
    configure_logging("console", "warning")
    plugins = _plugins(settings)
    infos = plugins.plugin_info()
    if args.json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "distribution": i.distribution,
                        "version": i.version,
                        "registers": i.registers,
                    }
                    for i in infos
                ],
                indent=2,
            )
            + "\n"
        )
        return 0
    for info in infos:
        sys.stdout.write(
            f"{info.name}  ({info.distribution or 'unknown'} {info.version or ''})\n".replace(" )", ")")
        )
        if not info.registers:
            sys.stdout.write("    (registers nothing; hooks only)\n")
        for category, kinds in sorted(info.registers.items()):
            sys.stdout.write(f"    {category}: {', '.join(kinds)}\n")
    for name in plugins.blocked_names():
        sys.stdout.write(f"{name}  (blocked)\n")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of experiment files, for the built-ins and the installed plugins."""
    from igym_core.config.converter import make_converter
    from igym_core.docs.schema import experiment_schema, schema_json
    from igym_core.logging import configure_logging

    settings = _settings(args)
    configure_logging("console", "warning")
    plugins = _plugins(settings, quiet=True)
    sys.stdout.write(schema_json(experiment_schema(make_converter(plugins.registry), plugins.registry)))
    return 0


def _plugin_commands(argv: Sequence[str]) -> list[type]:
    """Command classes from ``igym_register_commands``, honouring --block/--plugin in ``argv``."""
    from igym_core.commands import RESERVED_COMMANDS
    from igym_core.errors import PluginError

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--block", action="append")
    pre.add_argument("--plugin", action="append")
    known, _rest = pre.parse_known_args(list(argv))
    try:
        plugins = _plugins(_settings(known), quiet=True)
        registered = list(plugins.registry.commands.items())
    except IgymError as exc:
        # A broken plugin must not take `igym plugins` or `--help` down with it: the core commands
        # still work (and `igym run` reports the same problem when it loads the plugins).
        sys.stderr.write(f"warning: plugin commands are unavailable: {exc}\n")
        return []
    commands = []
    for kind, command, provider in registered:
        if kind in RESERVED_COMMANDS:
            raise PluginError(
                f"Plugin {provider!r} registers the command {kind!r}, which is one of igym's own "
                f"({', '.join(sorted(RESERVED_COMMANDS))}). Rename its kind."
            )
        commands.append(command)
    return commands


def installed_versions() -> list[tuple[str, str]]:
    """igym-core's version, then each installed distribution with an ``igym`` entry point, by name."""
    from importlib import metadata

    from igym_core import __version__
    from igym_core.plugins.markers import ENTRY_POINT_GROUP

    try:
        core = metadata.version("igym-core")
    except metadata.PackageNotFoundError:  # imported from a source tree that is not installed
        core = __version__
    plugins: dict[str, str] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        if dist is not None and dist.name != "igym-core":
            plugins[dist.name] = dist.version
    return [("igym-core", core), *sorted(plugins.items())]


class _VersionAction(argparse.Action):
    """``igym --version``: computed when asked for, not every time the parser is built."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print igym-core's and the installed plugins' versions"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        sys.stdout.write("".join(f"{name} {version}\n" for name, version in installed_versions()))
        parser.exit()


def build_parser(commands: Sequence[type] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="igym", description="Serve browser experiments.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--block", action="append", metavar="PLUGIN", help="do not load this plugin")
        p.add_argument(
            "--plugin", action="append", metavar="MODULE", help="also load this module as a plugin"
        )

    run = sub.add_parser("run", help="serve an experiment")
    run.add_argument("experiment", help=EXPERIMENT_HELP)
    run.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1; IGYM_HOST)")
    run.add_argument("--port", type=int, default=None, help="port (default 8000; IGYM_PORT)")
    run.add_argument("--data-dir", default=None, help="where data goes (default ./data; IGYM_DATA_DIR)")
    run.add_argument(
        "--log-format",
        choices=("console", "json", "auto"),
        default=None,
        help="console: coloured lines; json: one JSON object per line; auto (default): console on a "
        "terminal, json otherwise (IGYM_LOG_FORMAT)",
    )
    run.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: also serve the client's source maps (IGYM_DEV)",
    )
    common(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate an experiment without serving it")
    check.add_argument("experiment", help=EXPERIMENT_HELP)
    common(check)
    check.set_defaults(func=cmd_check)

    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="print the list as JSON")
    common(plugins)
    plugins.set_defaults(func=cmd_plugins)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of experiment files (TOML/JSON), installed plugins' kinds included",
        description="Print the JSON Schema of experiment files: every scene, question, sink and policy "
        "kind of the built-ins and the installed plugins, with every field. Editors use it to check "
        "and complete experiment files: igym schema > experiment.schema.json",
    )
    common(schema)
    schema.set_defaults(func=cmd_schema)

    for command_class in commands:
        command = command_class()
        parser_for = sub.add_parser(command.kind, help=command.help, description=command.help)
        command.add_arguments(parser_for)
        common(parser_for)
        parser_for.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        commands = _plugin_commands(argv)
    except IgymError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    args = build_parser(commands).parse_args(argv)
    try:
        return int(args.func(args))
    except IgymError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
