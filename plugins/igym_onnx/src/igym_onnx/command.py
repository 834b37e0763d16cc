"""``igym onnx check model.onnx module:env_factory``: what igym sees in a model, and a few steps with it."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import cattrs
import gymnasium
import numpy as np

from igym_core.commands import Command
from igym_core.config.converter import exception_text, problems_from_exception, sentence
from igym_core.envs import agent_seed
from igym_core.errors import ConfigError, IgymError
from igym_onnx.config import OnnxConfigError, OnnxPolicy, configure_converter
from igym_onnx.model import load_model, onnxruntime, resolve_model_path
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader
from igym_onnx.preprocess import describe_preprocess

__all__ = ["OnnxCommand", "config_from_args"]


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _numbers(value: str) -> float | list[float]:
    parts = _csv(value)
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or comma-separated numbers; got {value!r}"
        ) from None
    return numbers[0] if len(numbers) == 1 else numbers


class OnnxCommand(Command):
    """``igym onnx check``: inputs, outputs, roles, preprocessing; then a few env steps with the model."""

    kind: ClassVar[str] = "onnx"
    help: ClassVar[str] = "inspect ONNX policies (igym onnx check model.onnx module:env_factory)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="onnx_command", required=True)
        check = sub.add_parser(
            "check",
            help="show the model's inputs/outputs and the preprocessing, then run a few steps of the env",
            description="Show how igym would use an ONNX model as a bot, then play a few steps of the env "
            "with it for every agent whose spaces fit. Flags override --config.",
        )
        check.add_argument("model", help="the .onnx file")
        check.add_argument("env", help="module:env_factory or path/to/file.py:env_factory")
        check.add_argument("--steps", type=int, default=5, help="env steps to run (default 5)")
        check.add_argument("--seed", type=int, default=0, help="env reset seed and bot seed (default 0)")
        check.add_argument(
            "--env-kwargs", default=None, help="JSON object of keyword arguments for the factory"
        )
        check.add_argument("--agent", action="append", help="only this agent (repeatable)")
        check.add_argument("--config", default=None, help="a .json or .toml file with OnnxPolicy fields")
        check.add_argument("--keys", type=_csv, help="preprocess.keys, comma-separated, in order")
        check.add_argument("--dtype", choices=("float32", "float64", "int32", "int64"))
        check.add_argument("--mean", type=_numbers, help="a number or comma-separated numbers")
        check.add_argument("--std", type=_numbers, help="a number or comma-separated numbers")
        check.add_argument("--clip", type=_numbers, help="low,high (write --clip=-5,5 for a negative low)")
        check.add_argument("--observation-input", help="the observation input (default: discovered)")
        check.add_argument("--logits-output", help="the logits output (default: discovered)")
        check.add_argument("--state-inputs", type=_csv, help="recurrent state inputs, comma-separated")
        check.add_argument("--state-outputs", type=_csv, help="their outputs, in the same order")
        check.add_argument("--action", choices=("argmax", "sample"))
        check.add_argument("--temperature", type=float, help="sampling temperature (default 1)")
        check.add_argument("--mask-key", help="observation key of the action mask (default action_mask)")
        # `igym` adds --block/--plugin to the `onnx` parser; accept them after `check` too.
        check.add_argument("--block", action="append", metavar="PLUGIN", help=argparse.SUPPRESS)
        check.add_argument("--plugin", action="append", metavar="MODULE", help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        from igym_core.logging import configure_logging

        configure_logging("console", "warning")
        return check_model(args, out=sys.stdout)


def config_from_args(args: argparse.Namespace) -> OnnxPolicy:
    """The policy config ``igym onnx check`` uses: ``--config`` fields, then flags on top."""
    data: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            message = sentence(f"Cannot read --config {path}: {exc}", "Check the path.")
            raise ConfigError(message, title="") from exc
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"--config {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}", title=""
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"--config {path} must hold a table/object of OnnxPolicy fields.", title="")
        data.pop("kind", None)
    preprocess = dict(data.get("preprocess") or {})
    for name in ("keys", "dtype", "mean", "std", "clip"):
        if getattr(args, name) is not None:
            preprocess[name] = getattr(args, name)
    data["preprocess"] = preprocess
    for name in (
        "observation_input",
        "logits_output",
        "state_inputs",
        "state_outputs",
        "action",
        "temperature",
        "mask_key",
    ):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    data["path"] = str(args.model)
    data["seed"] = args.seed
    converter = cattrs.Converter(forbid_extra_keys=True)
    configure_converter(converter)
    try:
        return converter.structure(data, OnnxPolicy)
    except Exception as exc:
        raise ConfigError(
            problems_from_exception(exc, path="config"), title="The onnx policy config is invalid"
        ) from exc


def _make_env(spec: str, kwargs_json: str | None) -> tuple[Any, Any]:
    from igym_core.envs import as_parallel_env, resolve_callable

    kwargs = {}
    if kwargs_json:
        try:
            kwargs = json.loads(kwargs_json)
        except ValueError as exc:
            raise ConfigError(f"--env-kwargs is not a JSON object: {exc}", title="") from exc
        if not isinstance(kwargs, dict):
            raise ConfigError("--env-kwargs must be a JSON object, e.g. '{\"length\": 10}'.", title="")
    factory = resolve_callable(spec, what="the env factory", base_dir=Path.cwd())
    try:
        raw = factory(**kwargs)
    except Exception as exc:
        raise ConfigError(
            sentence(f"{spec}(**{kwargs!r}) raised {exception_text(exc)}", "Fix the factory."), title=""
        ) from exc
    return as_parallel_env(raw), raw


def _show_action(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist())
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def check_model(args: argparse.Namespace, *, out: Any) -> int:
    """Print what ``igym onnx check`` prints and return the exit code.

    Raises:
        IgymError: a problem the user can fix (the message says how).
    """
    write = out.write
    config = config_from_args(args)
    path = resolve_model_path(config.path, Path.cwd())
    model = load_model(config, base_dir=Path.cwd())
    signature = model.signature
    ort = onnxruntime()
    write(f"model: {path} (onnxruntime {ort.__version__})\n")
    for title, tensors in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        write(f"{title}:\n")
        for tensor in tensors:
            role = signature.reasons.get(tensor.name, "not used (ignored)")
            write(f"  {tensor.name}  {tensor.dtype} {tensor.shown_shape}  <- {role}\n")
    if signature.batchable:
        write("batching: yes: bots using this model are evaluated in one call per server tick\n")
    else:
        write("batching: no: the batch dimension is fixed, so each bot is evaluated on its own\n")
    write(f"declaration (the browser applies the same): {json.dumps(config.preprocess.to_json())}\n")
    how = (
        "argmax of the logits"
        if config.action == "argmax"
        else f"sample from softmax(logits / {config.temperature:g}) with the seeded stream"
    )
    write(f"actions: {how}; masked by observation[{config.effective_mask_key!r}] when present\n")

    env, _raw = _make_env(args.env, args.env_kwargs)
    try:
        observations, _infos = env.reset(seed=args.seed)
        agents = [a for a in env.possible_agents if not args.agent or str(a) in args.agent]
        if args.agent:
            missing = sorted(set(args.agent) - {str(a) for a in env.possible_agents})
            if missing:
                raise ConfigError(
                    f"--agent {missing} not in the env's agents {[str(a) for a in env.possible_agents]}.",
                    title="",
                )
        policies: dict[Any, OnnxActor] = {}
        problems: list[str] = []
        for agent in agents:
            name = str(agent)
            action_space = env.action_space(agent)
            observation_space = env.observation_space(agent)
            write(f"agent {name!r}: observations {observation_space}, actions {action_space}\n")
            try:
                policy = OnnxPolicyLoader().load(
                    config,
                    agent=name,
                    action_space=action_space,
                    observation_space=observation_space,
                    base_dir=Path.cwd(),
                )
            except IgymError as exc:
                problems.append(f"{name}: {exc}")
                write(f"  does not fit: {exc}\n")
                continue
            assert isinstance(policy, OnnxActor)
            policies[agent] = policy
            observation = observations.get(agent)
            if observation is not None:
                for line in describe_preprocess(config.preprocess, observation, mask_key=model.mask_key):
                    write(f"  {line}\n")
                row_shape = signature.row_shape
                shape = [1, *(row_shape if row_shape is not None else ("n",))]
                write(f"  → input {signature.observation.name!r} with shape {shape} (batch of one)\n")
        if not policies:
            raise OnnxConfigError(
                "The model fits none of the env's agents:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        write(
            f"running {args.steps} step(s) with env seed {args.seed}; each bot seeded with "
            f"agent_seed({args.seed}, agent) as in a game episode with that seed; agents without the model "
            "act randomly\n"
        )
        randoms = {}
        for agent in env.possible_agents:
            if agent not in policies:
                space = env.action_space(agent)
                if isinstance(space, gymnasium.spaces.Space):
                    space.seed(args.seed)
                randoms[agent] = space
        for agent, policy in policies.items():
            policy.reset(seed=agent_seed(args.seed, str(agent)))  # as in a game with this episode seed
        for step in range(1, args.steps + 1):
            actions = {}
            shown = []
            for agent in env.agents:
                if agent in policies:
                    actions[agent] = policies[agent].act(observations[agent])
                    shown.append(f"{agent}={_show_action(actions[agent])}")
                else:
                    actions[agent] = randoms[agent].sample()
                    shown.append(f"{agent}={_show_action(actions[agent])} (random)")
            observations, rewards, terminations, truncations, _infos = env.step(actions)
            reward_text = ", ".join(f"{a}={float(r):g}" for a, r in rewards.items())
            write(f"step {step}: {' '.join(shown)}; rewards {reward_text}\n")
            if not env.agents or all(
                terminations.get(a, False) or truncations.get(a, False) for a in actions
            ):
                write(f"episode ended after step {step}\n")
                break
    finally:
        with contextlib.suppress(Exception):
            env.close()
    write("OK\n")
    return 0
