"""The hook specifications and the plugin manager's set-up rules (ARCHITECTURE.md section 1)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import igym_core
import igym_core.builtin
from igym_core import hookimpl, hookspecs
from igym_core.errors import PluginError
from igym_core.plugins.manager import BUILTIN_PLUGINS, create_plugin_manager
from igym_core.plugins.markers import hookspec
from igym_core.session.participant import Participant
from igym_core.settings import Settings

SPEC_NAMES = sorted(n for n in hookspecs.__all__ if n.startswith("igym_"))
PACKAGE_DIR = Path(igym_core.__file__).resolve().parent


def _spec_opts(name: str) -> dict[str, Any]:
    opts = getattr(getattr(hookspecs, name), "igym_spec", None)
    assert opts is not None, f"{name} is listed in hookspecs.__all__ but is not a @hookspec"
    return opts


def _spec_functions_in_module() -> set[str]:
    return {
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, "igym_spec")
    }


# --- the specs themselves ----------------------------------------------------------------------


def test_all_lists_every_spec_and_only_specs():
    defined = _spec_functions_in_module()
    assert defined, "no @hookspec functions found in igym_core.hookspecs"
    assert set(hookspecs.__all__) == defined
    assert len(hookspecs.__all__) == len(set(hookspecs.__all__)), "__all__ lists a name twice"


def test_there_are_specs_of_every_family():
    families = {name.split("_")[1] for name in SPEC_NAMES}
    assert {"register", "resolve", "on", "add"} <= families


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_is_named_igym_verb_noun_in_one_family(name):
    assert re.fullmatch(r"igym_(register|resolve|on|add)_[a-z_]+", name), (
        f"{name} does not belong to one of the hook families igym_register_*, igym_resolve_*, "
        "igym_on_* (or igym_add_hookspecs)"
    )


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_docstring_mentions_every_argument(name):
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function)
    assert doc, f"{name} has no docstring"
    parameters = list(inspect.signature(function).parameters)
    for parameter in parameters:
        assert re.search(rf"\b{re.escape(parameter)}\b", doc), (
            f"the docstring of {name} does not mention its argument {parameter!r}"
        )
    if parameters:
        assert "Args:" in doc, f"{name} takes arguments but its docstring has no Args: section"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_documents_what_it_returns(name):
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    returns = inspect.signature(function).return_annotation
    assert returns is not inspect.Signature.empty, f"{name} has no return annotation"
    if str(returns) != "None":
        match = re.search(r"^Returns:\n((?:[ \t]+\S.*\n?)+)", doc, re.MULTILINE)
        assert match, f"{name} returns {returns} but its docstring has no (indented) Returns: section"
        assert match.group(1).strip(), f"{name}: the Returns: section is empty"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_options_follow_its_family(name):
    opts = _spec_opts(name)
    returns = str(inspect.signature(getattr(hookspecs, name)).return_annotation)
    if name.startswith("igym_register_"):
        assert returns.startswith("list["), f"{name} must return a list, is annotated {returns}"
        assert not opts.get("firstresult"), f"{name}: every register implementation must be called"
        assert not opts.get("historic")
    elif name.startswith("igym_resolve_"):
        assert opts.get("firstresult"), f"{name} must be firstresult (the first answer decides)"
        assert returns.endswith("| None"), f"{name} must allow None (let the next plugin decide)"
    elif name.startswith("igym_on_"):
        assert not opts.get("firstresult"), f"{name} is a notification: every plugin hears it"
        assert returns == "None", f"{name} is a notification and returns nothing"
    elif name == "igym_add_hookspecs":
        assert opts.get("historic"), "igym_add_hookspecs must be historic"
    else:  # pragma: no cover - caught by the naming test above
        pytest.fail(f"{name} belongs to no family")


def test_resolve_builtins_are_trylast_so_plugins_can_take_over(igym_pm):
    for name in SPEC_NAMES:
        if not name.startswith("igym_resolve_"):
            continue
        impls = getattr(igym_pm.pm.hook, name).get_hookimpls()
        builtin = [i for i in impls if i.plugin_name.startswith("igym.")]
        assert builtin, f"no built-in answers {name}"
        assert all(i.trylast for i in builtin), f"the built-in answer to {name} must be trylast"


# --- built-ins are plugins ---------------------------------------------------------------------


def test_builtins_are_registered_by_name(igym_pm):
    names = igym_pm.plugin_names()
    for module_name in BUILTIN_PLUGINS:
        name = f"igym.{module_name}"
        assert name in names
        assert igym_pm.pm.get_plugin(name) is importlib.import_module(f"igym_core.builtin.{module_name}")


def test_every_builtin_module_with_hookimpls_is_registered():
    manager = create_plugin_manager(autoload=False)
    registered = set(manager.plugin_names())
    for module_info in pkgutil.iter_modules(igym_core.builtin.__path__):
        module = importlib.import_module(f"igym_core.builtin.{module_info.name}")
        has_hooks = any(callable(v) and hasattr(v, "igym_impl") for v in vars(module).values())
        if has_hooks:
            assert f"igym.{module_info.name}" in registered, (
                f"igym_core.builtin.{module_info.name} holds hookimpls but is not registered"
            )


def test_a_builtin_can_be_blocked_by_name():
    blocked = create_plugin_manager(autoload=False, blocked=["igym.sink_jsonl"])
    assert "igym.sink_jsonl" not in blocked.plugin_names()
    assert "igym.sink_jsonl" in blocked.blocked_names()
    assert "jsonl" not in blocked.registry.data_sinks
    assert not any(i.name == "igym.sink_jsonl" for i in blocked.plugin_info())
    # The other built-ins are unaffected.
    assert "survey" in blocked.registry.scene_types
    unblocked = create_plugin_manager(autoload=False)
    assert "jsonl" in unblocked.registry.data_sinks


def test_blocking_the_only_sink_stops_the_app_with_a_clear_error(tmp_path):
    from igym_core.errors import ConfigError
    from igym_core.examples.survey_study import experiment
    from igym_core.testing import make_test_app

    plugins = create_plugin_manager(autoload=False, blocked=["igym.sink_jsonl"], strict=True)
    with pytest.raises(ConfigError, match="blocked"):
        make_test_app(experiment, tmp_path / "data", plugins=plugins)


def test_settings_read_blocked_plugins_from_the_environment():
    settings = Settings.from_env({"IGYM_BLOCKED_PLUGINS": "igym.sink_jsonl, other"})
    assert settings.blocked_plugins == ("igym.sink_jsonl", "other")


# --- entry points and the autoload off switch --------------------------------------------------

_FAKE_PLUGIN = """
from igym_core import SceneConfig, hookimpl
import attrs


@attrs.frozen(kw_only=True)
class FakeScene(SceneConfig):
    kind = "fake_entry_point_scene"


@hookimpl
def igym_register_scene_types():
    return [FakeScene]
"""


@pytest.fixture
def installed_fake_plugin(tmp_path, monkeypatch):
    """A distribution 'igym-fake' on sys.path with an entry point in the 'igym' group."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "igym_fake_plugin.py").write_text(_FAKE_PLUGIN, encoding="utf-8")
    dist_info = site / "igym_fake-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: igym-fake\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text("[igym]\nfake = igym_fake_plugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield "fake"
    sys.modules.pop("igym_fake_plugin", None)


def test_entry_point_plugins_load_with_their_distribution(installed_fake_plugin):
    manager = create_plugin_manager(autoload=True)
    assert installed_fake_plugin in manager.plugin_names()
    assert "fake_entry_point_scene" in manager.registry.scene_types
    assert manager.registry.scene_types.provider("fake_entry_point_scene") == "fake"
    info = {i.name: i for i in manager.plugin_info()}[installed_fake_plugin]
    assert (info.distribution, info.version) == ("igym-fake", "1.2.3")
    assert info.registers == {"scene_types": ["fake_entry_point_scene"]}


def test_autoload_off_switch_is_respected(installed_fake_plugin, tmp_path):
    from igym_core.examples.survey_study import experiment
    from igym_core.server.app import create_app

    on = Settings.from_env({"IGYM_DATA_DIR": str(tmp_path / "on")})
    off = Settings.from_env({"IGYM_DISABLE_PLUGIN_AUTOLOAD": "1", "IGYM_DATA_DIR": str(tmp_path / "off")})
    assert on.autoload_plugins is True
    assert off.autoload_plugins is False
    assert Settings.from_env({"IGYM_DISABLE_PLUGIN_AUTOLOAD": "0"}).autoload_plugins is True

    # The app builds its plugin manager from the settings.
    app_on = create_app(on, experiment)
    app_off = create_app(off, experiment)
    assert installed_fake_plugin in app_on.state.plugins.plugin_names()
    assert installed_fake_plugin not in app_off.state.plugins.plugin_names()
    assert "fake_entry_point_scene" not in app_off.state.plugins.registry.scene_types
    # Built-ins do not depend on autoload.
    assert "igym.scenes_static" in app_off.state.plugins.plugin_names()


def test_an_entry_point_plugin_can_be_blocked(installed_fake_plugin):
    manager = create_plugin_manager(autoload=True, blocked=[installed_fake_plugin])
    assert installed_fake_plugin not in manager.plugin_names()
    assert "fake_entry_point_scene" not in manager.registry.scene_types


# --- misspelled hooks ---------------------------------------------------------------------------


class _Misspelled:
    @hookimpl
    def igym_register_scene_type(self) -> list[Any]:  # missing the final "s"
        return []


def test_misspelled_hookimpl_fails_check_pending_with_a_fix():
    with pytest.raises(PluginError) as info:
        create_plugin_manager(autoload=False, extra=[_Misspelled()])
    message = str(info.value)
    assert "igym_register_scene_type" in message
    assert "spelling" in message
    assert "igym_core.hookspecs" in message
    assert "optionalhook=True" in message


def test_optional_unknown_hookimpl_is_accepted():
    class Optional:
        @hookimpl(optionalhook=True)
        def igym_some_future_hook(self) -> None:
            return None

    manager = create_plugin_manager(autoload=False, extra=[Optional()])
    assert len(manager.plugin_names()) == len(BUILTIN_PLUGINS) + 1


def test_plugin_hookspecs_are_added_through_the_historic_hook():
    class Specs:
        @staticmethod
        @hookspec
        def igym_myplugin_on_thing(value: int) -> None:
            """A plugin's own hook."""

    class Provider:
        @hookimpl
        def igym_add_hookspecs(self, plugin_manager: Any) -> None:
            plugin_manager.add_hookspecs(Specs)

    class Listener:
        def __init__(self) -> None:
            self.heard: list[int] = []

        @hookimpl
        def igym_myplugin_on_thing(self, value: int) -> None:
            self.heard.append(value)

    listener = Listener()
    manager = create_plugin_manager(autoload=False, extra=[Provider(), listener])
    manager.pm.hook.igym_myplugin_on_thing(value=7)
    assert listener.heard == [7]


# --- notifications ------------------------------------------------------------------------------


class _Broken:
    @hookimpl
    def igym_on_participant_joined(self, participant: Participant) -> None:
        raise RuntimeError("plugin bug")


class _Listening:
    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    def igym_on_participant_joined(self, participant: Participant) -> None:
        self.heard.append(participant.participant_id)


def _someone() -> Participant:
    return Participant(participant_id="p-1", token="t", params={})


@pytest.mark.parametrize("broken_first", [True, False])
def test_failing_notification_is_logged_and_does_not_raise(broken_first):
    listener = _Listening()
    extra = [_Broken(), listener] if broken_first else [listener, _Broken()]
    manager = create_plugin_manager(autoload=False, extra=extra, strict=False)
    with capture_logs() as logs:
        manager.notify_participant_joined(_someone())
    # The other plugin still heard it, whatever the order.
    assert listener.heard == ["p-1"]
    failures = [e for e in logs if e["event"] == "hook_failed"]
    assert len(failures) == 1
    assert failures[0]["hook"] == "igym_on_participant_joined"
    assert failures[0]["log_level"] == "error"
    assert failures[0]["plugin"] in manager.plugin_names()


def test_failing_notification_raises_when_strict():
    manager = create_plugin_manager(autoload=False, extra=[_Broken()], strict=True)
    with capture_logs(), pytest.raises(RuntimeError, match="plugin bug"):
        manager.notify_participant_joined(_someone())


def test_failing_notification_does_not_end_a_participants_study(tmp_path):
    from litestar.testing import TestClient

    from igym_core.examples.survey_study import experiment
    from igym_core.testing import ScriptedParticipant, make_test_app

    plugins = create_plugin_manager(autoload=False, extra=[_Broken()], strict=False)
    app = make_test_app(experiment, tmp_path / "data", plugins=plugins, strict_plugins=False)
    with capture_logs() as logs, TestClient(app) as client, ScriptedParticipant(client) as p:
        assert p.kind == "start"
        assert p.submit({"agree": True})["scene"]["kind"] == "static"
    assert any(e["event"] == "hook_failed" for e in logs)


# --- layering ------------------------------------------------------------------------------------

_LAYERING_EXEMPT = ("builtin", "testing", "examples")


def _imports_builtin(source: str, module: str) -> list[str]:
    """Lines of ``source`` (module ``module``, dotted) that import ``igym_core.builtin``."""
    tree = ast.parse(source)
    package_parts = module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
            if target == "igym_core":  # the lazy re-exports of igym_core/__init__.py
                names += ["igym_core.builtin" for a in node.names if a.name in igym_core._BUILTIN_EXPORTS]
        else:
            continue
        if any(n == "igym_core.builtin" or n.startswith("igym_core.builtin.") for n in names):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import igym_core.builtin.sink_jsonl", "igym_core.server.app"),
        ("from igym_core.builtin import questions", "igym_core.server.app"),
        ("from igym_core import builtin", "igym_core.server.app"),
        ("from ..builtin.questions import Choice", "igym_core.server.app"),
        ("from igym_core import EndScene", "igym_core.session.study"),
        ("def f():\n    from igym_core.builtin.questions import Choice", "igym_core.session.study"),
    ],
)
def test_layering_check_detects_imports_of_builtin(source, module):
    assert _imports_builtin(source, module)


def test_core_never_imports_builtin():
    checked = []
    offenders = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        if relative.parts[0] in _LAYERING_EXEMPT or relative == Path("__init__.py"):
            continue
        module = ".".join(("igym_core", *relative.with_suffix("").parts))
        checked.append(module)
        found = _imports_builtin(path.read_text(encoding="utf-8"), module)
        if found:
            offenders[str(relative)] = found
    assert "igym_core.server.app" in checked and "igym_core.session.study" in checked
    assert not offenders, f"core modules import igym_core.builtin (ask the registry instead): {offenders}"
