"""Callables named in an experiment: ``"package.module:attr"``, ``"path/to/file.py:attr"`` or objects.

An experiment names its environment factory (and Python bots) either directly, as a callable, or as
a string, so that the same experiment also works from TOML/JSON. Errors name what was being loaded
(``env_factory``), the spec, the cause and the fix.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from igym_core.config.converter import exception_text
from igym_core.errors import ConfigError

__all__ = [
    "NOT_LOADABLE",
    "callable_data",
    "callable_ref",
    "import_object",
    "not_loadable_problem",
    "resolve_callable",
]

#: Modules imported from a file path are registered in ``sys.modules`` under this prefix.
_FILE_MODULE_PREFIX = "_igym_file_"

_SPEC_FORMS = (
    "'package.module:attribute' (for example 'my_study.envs:make_env') or "
    "'path/to/file.py:attribute' (relative to the experiment file's directory)"
)


def _error(what: str, message: str) -> ConfigError:
    return ConfigError(f"{what}: {message}", title="")


def resolve_callable(
    spec: str | Callable[..., Any], *, what: str, base_dir: Path | None = None
) -> Callable[..., Any]:
    """Return ``spec`` if it is callable; import it if it is a ``module:attr`` or ``file.py:attr`` string.

    Args:
        spec: a callable, or a string naming one.
        what: what the callable is for, as the experiment calls it (``"env_factory"``); errors
            start with it.
        base_dir: the directory relative file paths start from (the experiment file's directory);
            ``None`` means the current directory.

    Raises:
        ConfigError: the string is malformed, the module cannot be imported, the attribute is missing
            or is not callable.
    """
    if isinstance(spec, str):
        value = import_object(spec, what=what, base_dir=base_dir)
        if not callable(value):
            raise _error(
                what,
                f"{spec!r} names an object of type {type(value).__name__}, not a function or class. Name the "
                "function (or class) that builds it instead, for example 'my_study.envs:make_env'.",
            )
        return value  # type: ignore[no-any-return]
    if callable(spec):
        return spec
    raise _error(
        what,
        f"expected a function, a class or a string {_SPEC_FORMS}; got {type(spec).__name__} {spec!r}.",
    )


def import_object(spec: str, *, what: str, base_dir: Path | None = None) -> Any:
    """Import the object a ``module:attr`` or ``file.py:attr`` string names (dotted ``attr`` allowed)."""
    module_part, sep, attr_path = spec.strip().rpartition(":")
    attrs_ok = bool(attr_path) and all(part.isidentifier() for part in attr_path.split("."))
    if not sep or not module_part or not attrs_ok:
        raise _error(what, f"expected {_SPEC_FORMS}; got {spec!r}.")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        module = _import_file(module_part, spec=spec, what=what, base_dir=base_dir)
    else:
        module = _import_module(module_part, spec=spec, what=what, base_dir=base_dir)
    value: Any = module
    walked: list[str] = []
    for part in attr_path.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            owner = module_part if not walked else f"{module_part}:{'.'.join(walked)}"
            raise _error(
                what,
                f"{owner!r} has no attribute {part!r} (from {spec!r}).{_offer(value)} Check the spelling.",
            ) from None
        walked.append(part)
    return value


def _offer(namespace: Any) -> str:
    """The public callables ``namespace`` defines, as a hint after a misspelt attribute."""
    if not hasattr(namespace, "__dict__"):
        return ""
    names = sorted(
        name
        for name, value in vars(namespace).items()
        if not name.startswith("_") and callable(value) and not inspect.ismodule(value)
    )
    if not names:
        return ""
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f" It defines: {shown}."


def _import_module(module_name: str, *, spec: str, what: str, base_dir: Path | None) -> Any:
    first_error: ModuleNotFoundError | None = None
    # A module next to the experiment file is importable once that directory is on the path.
    for directory in (None, base_dir, Path.cwd()):
        if directory is not None:
            if str(directory) in sys.path:
                continue
            sys.path.append(str(directory))
            importlib.invalidate_caches()
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing_self = exc.name is not None and (
                module_name == exc.name or module_name.startswith(exc.name + ".")
            )
            if not missing_self:
                raise _import_failed(what, module_name, spec, exc) from exc
            first_error = first_error or exc
        except Exception as exc:
            raise _import_failed(what, module_name, spec, exc) from exc
    leaf = module_name.rpartition(".")[2]
    attr = spec.rpartition(":")[2]
    raise _error(
        what,
        f"no module named {module_name!r} (from {spec!r}). Check the spelling, install the "
        f"package that provides it, or name the file instead: 'path/to/{leaf}.py:{attr}'.",
    ) from first_error


def _import_file(file_part: str, *, spec: str, what: str, base_dir: Path | None) -> Any:
    base = base_dir if base_dir is not None else Path.cwd()
    path = Path(file_part).expanduser()
    if not path.is_absolute():
        path = base / path
    path = path.resolve()
    if not path.is_file():
        raise _error(
            what,
            f"no such file {str(path)!r} (from {spec!r}, relative to {str(base)!r}). Give the path "
            "relative to the experiment file's directory, or an absolute path.",
        )
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"{_FILE_MODULE_PREFIX}{_safe_stem(path.stem)}_{digest}"
    existing = sys.modules.get(module_name)
    if existing is not None:
        return existing
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise _error(what, f"cannot import {str(path)!r} as a Python module; name a .py file.")
    module = importlib.util.module_from_spec(module_spec)
    # The file may import its neighbours, as it would when run as a script.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if isinstance(exc, Exception):
            raise _import_failed(what, str(path), spec, exc) from exc
        raise
    return module


def _safe_stem(stem: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in stem)


def _import_failed(what: str, module: str, spec: str, exc: BaseException) -> ConfigError:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.partition(".")[0]
        return _error(
            what,
            f"importing {module!r} (from {spec!r}) failed: it imports {exc.name!r}, which is not "
            f"installed. Install it (for example `uv add {top}`) in the environment igym runs in.",
        )
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<") and "importlib" not in f.filename
    ]
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return _error(
        what,
        f"importing {module!r} (from {spec!r}) raised {exception_text(exc)}{where}. "
        "Fix the error in that module.",
    )


def callable_ref(obj: Any) -> str:
    """A readable reference to a callable for config snapshots: ``"module:qualname"`` where possible.

    Strings are returned as they are. Callables that cannot be imported by name are described instead
    (``"<lambda> in module my_study"``, ``"make.<locals>.env in module my_study"``); functions from
    files imported by path are named by their file (``"/abs/path/envs.py:make_env"``).
    """
    if isinstance(obj, str):
        return obj
    if isinstance(obj, functools.partial):
        return f"functools.partial({callable_ref(obj.func)}, ...)"
    if inspect.ismethod(obj) and not isinstance(obj.__self__, type):
        return f"{callable_ref(obj.__func__)} bound to a {type(obj.__self__).__qualname__}"
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        cls = type(obj)
        return f"{_module_ref(cls.__module__)}:{cls.__qualname__} instance"
    if "<" in qualname:  # <lambda>, <locals>: not importable by name
        return f"{qualname} in module {_module_ref(module)}"
    return f"{_module_ref(module)}:{qualname}"


#: The key of the table that stands, in a config snapshot, for a Python object that cannot be
#: named by an import path (a lambda, a local function, an object): ``{"not_loadable": "..."}``.
NOT_LOADABLE = "not_loadable"

#: Experiment files imported by path (``igym run study.py:experiment``) get module names with this prefix.
_EXPERIMENT_FILE_PREFIX = "igym_experiment_"


def callable_data(obj: Any) -> Any:
    """A Python object as data, for config snapshots that must load back.

    ``"module:qualname"`` (or ``"/abs/path/file.py:qualname"`` for a file imported by path) when that
    reference imports this very object; otherwise ``{"not_loadable": "<lambda> in module my_study"}``,
    which loading refuses with a message (:func:`not_loadable_problem`): never a silent ``str(obj)``.
    Strings are returned as they are.
    """
    if isinstance(obj, str):
        return obj
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    if module is not None and isinstance(qualname, str) and "<" not in qualname and module_name != "__main__":
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is obj:
            if module_name.startswith((_FILE_MODULE_PREFIX, _EXPERIMENT_FILE_PREFIX)):
                file = getattr(module, "__file__", None)
                if file:
                    return f"{file}:{qualname}"
            else:
                return f"{module_name}:{qualname}"
    return {NOT_LOADABLE: callable_ref(obj)}


def not_loadable_problem(value: Any) -> str | None:
    """What is wrong with a snapshot's marker for an object that has no import path, or None."""
    if isinstance(value, Mapping) and set(value) == {NOT_LOADABLE}:
        return (
            f"was a Python object without an import path ({value[NOT_LOADABLE]}) when this config was "
            "written, so it cannot be loaded from data; define it at module level and name it as "
            "'package.module:attribute' or 'path/to/file.py:attribute'."
        )
    return None


def _module_ref(module_name: str) -> str:
    if module_name.startswith(_FILE_MODULE_PREFIX):
        file = getattr(sys.modules.get(module_name), "__file__", None)
        if file:
            return str(file)
    return module_name
