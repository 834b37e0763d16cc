"""Plugin subcommands of the ``igym`` command (``igym_register_commands``)."""

from __future__ import annotations

import sys
import types

import pytest

from igym_core import hookimpl
from igym_core.cli import main
from igym_core.commands import Command


class Greet(Command):
    kind = "greet"
    help = "say hello"

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--times", type=int, default=1)

    def run(self, args):
        sys.stdout.write(("hello " + args.name + "\n") * args.times)
        return 3 if args.name == "three" else 0


class TakesRun(Greet):
    kind = "run"


def _plugin_module(monkeypatch, name: str, *commands: type[Command]) -> str:
    module = types.ModuleType(name)

    @hookimpl
    def igym_register_commands():
        return list(commands)

    module.igym_register_commands = igym_register_commands
    monkeypatch.setitem(sys.modules, name, module)
    return name


def test_plugin_command_is_a_subcommand_with_its_arguments(monkeypatch, capsys):
    name = _plugin_module(monkeypatch, "igym_test_greet_plugin", Greet)
    assert main(["greet", "ada", "--times", "2", "--plugin", name]) == 0
    assert capsys.readouterr().out == "hello ada\nhello ada\n"
    assert main(["greet", "three", "--plugin", name]) == 3  # the command's exit code is igym's


def test_plugin_command_is_listed_in_help(monkeypatch, capsys):
    monkeypatch.setenv("IGYM_PLUGINS", _plugin_module(monkeypatch, "igym_test_greet_plugin2", Greet))
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "greet" in out and "say hello" in out


def test_without_the_plugin_the_command_does_not_exist(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["greet", "ada"])
    assert exc.value.code == 2
    assert "invalid choice: 'greet'" in capsys.readouterr().err


def test_a_plugin_cannot_take_a_core_command(monkeypatch, capsys):
    name = _plugin_module(monkeypatch, "igym_test_run_plugin", TakesRun)
    assert main(["run", "x:y", "--plugin", name]) == 2
    err = capsys.readouterr().err
    assert "registers the command 'run'" in err and "Rename its kind" in err
