"""The browser's view of a game scene (server side): :func:`browser_game_spec`.

The ``pyodide`` runtime sends this to the page (which hands it to the worker); the browser reads
it with :meth:`igym_pyodide_p2p.browser.spec.GameSpec.from_json`. Everything the browser must run
is named by import path (``"module:attribute"``), so it imports the same code the server checked:
the env factory, ``render_fn``, ``hud`` and Python bots. :func:`browser_problems` lists what cannot
run in a browser (for ``igym check``); :func:`browser_game_spec` refuses such a scene with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from igym_core.errors import ConfigError

__all__ = [
    "DEFAULT_BATCH_INTERVAL_MS",
    "DEFAULT_HASH_EVERY",
    "MAX_MODEL_BYTES",
    "bot_spec",
    "browser_game_spec",
    "browser_problems",
    "build_spec",
    "discrete_range",
    "spec_summary",
]

#: Steps between two state hashes in the browser's records (and after the reset and at the end).
DEFAULT_HASH_EVERY = 30
#: How often the page sends the steps it made (at most 1000 ms: a closed tab loses at most that).
DEFAULT_BATCH_INTERVAL_MS = 500
#: ONNX models travel inside the spec; bigger ones are refused (serve a smaller model, or use the
#: server runtime).
MAX_MODEL_BYTES = 4 * 1024 * 1024


#: Module names igym gives files it imports by path (``file.py:attr``, ``igym run study.py:...``).
_FILE_MODULE_PREFIXES = ("_igym_file_", "igym_experiment_")


def _importable_ref(value: Any, field: str, problems: list[str]) -> str | None:
    """``"module:qualname"`` for a callable (or a reference string) the browser can import by name.

    A function from a file igym imported by path is named by the file's stem: the browser gets the
    file as a module of that name (igym-pyodide-p2p's package service ships study files so)."""
    from igym_core.envs import callable_ref

    if value is None:
        return None
    ref = callable_ref(value)
    module_name = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if (
        isinstance(module_name, str)
        and module_name.startswith(_FILE_MODULE_PREFIXES)
        and isinstance(qualname, str)
        and "<" not in qualname
    ):
        file = getattr(sys.modules.get(module_name), "__file__", None)
        if file:
            return f"{Path(file).stem}:{qualname}"
    module, sep, attribute = ref.partition(":")
    if (
        not sep
        or not attribute
        or " " in ref
        or module.endswith(".py")
        or "/" in module
        or module == "__main__"
    ):
        problems.append(
            f"{field}: {ref!r} cannot be imported by name in the browser. Define it in a module (e.g. "
            "my_study.envs:make_env, or a function in a study file) so that igym can ship it there."
        )
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        problems.append(f"{field}: module {module!r} is not importable here.")
        return None
    return ref


def discrete_range(space: Any) -> tuple[int, int] | None:
    try:
        from gymnasium import spaces
    except ImportError:  # pragma: no cover - gymnasium is a dependency of igym_core
        return None
    if isinstance(space, spaces.Discrete):
        return int(space.n), int(space.start)
    return None


def bot_spec(
    name: str, config: Any, bot: Any, space: tuple[int, int] | None, base_dir: Path, problems: list[str]
) -> dict[str, Any] | None:
    kind = getattr(type(config), "kind", None)
    field = f"$.policies.{name}"
    spec: dict[str, Any] = {"kind": kind, "act_every": bot.act_every, "between": bot.between}
    if kind == "random":
        if space is None:
            problems.append(
                f"{field}: a random bot in the browser needs a Discrete action space (without NumPy the "
                "browser samples only those); use runtime='server' for this seat's space."
            )
            return None
        spec.update(n=space[0], start=space[1], seed=config.seed)
    elif kind == "python":
        target = _importable_ref(config.target, f"{field}.target", problems)
        if target is None:
            return None
        spec["target"] = target
    elif kind == "constant":
        from igym_pyodide_p2p.browser.stepper import plain

        spec["action"] = plain(config.action)
    elif kind == "onnx":
        path = Path(config.path)
        if not path.is_absolute():
            path = base_dir / path
        try:
            model = path.read_bytes()
        except OSError as exc:
            problems.append(f"{field}: the ONNX model {str(path)!r} cannot be read: {exc}.")
            return None
        if len(model) > MAX_MODEL_BYTES:
            problems.append(
                f"{field}: the ONNX model is {len(model)} bytes; the browser runtime sends models of at "
                f"most {MAX_MODEL_BYTES} bytes. Use a smaller model or runtime='server'."
            )
            return None
        spec["onnx"] = {
            "config": config.to_json(),
            "model": model,
            "sha256": hashlib.sha256(model).hexdigest(),
            "runtime_bytes": _onnx_runtime_bytes(),
        }
        if space is not None:
            spec["onnx"]["action_start"] = space[1]
    else:
        problems.append(
            f"{field}: a {kind!r} policy cannot play in the browser; the pyodide runtime plays random, "
            "python, constant and onnx policies."
        )
        return None
    return spec


def _onnx_runtime_bytes() -> int:
    """The size of onnxruntime-web's files that igym-onnx serves (what the page downloads once for
    its ONNX bots; the loader shows it), or 0 when they are not there."""
    try:
        from importlib.resources import files

        folder = files("igym_onnx") / "static" / "ort"
        return sum(entry.stat().st_size for entry in Path(str(folder)).iterdir() if entry.is_file())
    except (ImportError, ModuleNotFoundError, OSError):
        return 0


def build_spec(prepared: Any, hash_every: int, batch_interval_ms: int) -> tuple[dict[str, Any], list[str]]:
    """The spec and what keeps the scene from running in the browser (``$.field: why`` each). The
    runtime's own rules (one participant, no same_group_as) are the runtime's check_scene's."""
    scene = prepared.scene
    problems: list[str] = []
    if scene.renderer != "objects":
        problems.append(
            f"$.renderer: {scene.renderer!r} cannot draw in the browser; the pyodide runtime draws render "
            "objects (renderer='objects'). Use runtime='server' for an env that draws pixels."
        )
    env_factory = _importable_ref(prepared.env_factory, "$.env_factory", problems)
    render_fn = _importable_ref(prepared.render_fn, "$.render_fn", problems)
    hud = _importable_ref(prepared.hud, "$.hud", problems)
    env, _raw = prepared.make_env()
    try:
        spaces = {str(agent): discrete_range(env.action_space(agent)) for agent in prepared.agents}
    finally:
        with contextlib.suppress(Exception):  # a probe env: nothing to report
            env.close()
    bots: dict[str, Any] = {}
    for name, (config, bot) in prepared.bots.items():
        spec = bot_spec(name, config, bot, spaces.get(name), prepared.base_dir, problems)
        if spec is not None:
            bots[name] = spec
    from igym_pyodide_p2p.browser.stepper import plain

    spec = {
        "scene_id": scene.scene_id,
        "env_factory": env_factory,
        "env_kwargs": plain(dict(scene.env_kwargs)),
        "render_fn": render_fn,
        "hud": hud,
        "agents": [str(a) for a in prepared.agents],
        "human_seat": prepared.human_seats[0] if len(prepared.human_seats) == 1 else None,
        "action_mapping": plain(dict(scene.action_mapping)),
        "default_action": plain(scene.default_action),
        "input_mode": scene.input_mode,
        "fps": scene.fps,
        "num_episodes": scene.num_episodes,
        "max_steps": scene.max_steps,
        "bots": bots,
        "action_spaces": {name: list(space) for name, space in spaces.items() if space is not None},
        "hash_every": hash_every,
        "record_observations": scene.record_observations,
        "batch_interval_ms": batch_interval_ms,
    }
    return spec, problems


def browser_problems(prepared: Any) -> list[str]:
    """What keeps a prepared game scene from running in the browser (empty: it can)."""
    return build_spec(prepared, DEFAULT_HASH_EVERY, DEFAULT_BATCH_INTERVAL_MS)[1]


def browser_game_spec(
    prepared: Any,
    *,
    hash_every: int = DEFAULT_HASH_EVERY,
    batch_interval_ms: int = DEFAULT_BATCH_INTERVAL_MS,
) -> dict[str, Any]:
    """The spec the browser runs ``prepared`` (a prepared game scene) from; msgpack-ready.

    ``hash_every`` and ``batch_interval_ms`` come from the scene's runtime options. Raises
    :class:`~igym_core.errors.ConfigError` listing what cannot run in a browser.
    """
    if len(prepared.human_seats) != 1:
        raise ValueError(
            f"the browser plays games of one participant; scene {prepared.scene.scene_id!r} has human "
            f"seats {list(prepared.human_seats)}"
        )
    spec, problems = build_spec(prepared, hash_every, batch_interval_ms)
    if problems:
        raise ConfigError(
            [f"scene {prepared.scene.scene_id!r}: {p}" for p in problems],
            title=f"Game scene {prepared.scene.scene_id!r} cannot run in the browser",
        )
    return spec


def spec_summary(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec without model bytes (for logs and the config snapshot)."""
    bots = {
        name: {k: v for k, v in bot.items() if k != "onnx"}
        | ({"onnx": {"sha256": bot["onnx"]["sha256"]}} if "onnx" in bot else {})
        for name, bot in spec.get("bots", {}).items()
    }
    return {**spec, "bots": bots}
