"""The same models, observations and preprocessing in Python (onnxruntime) and in Chromium
(onnxruntime-web, served by igym from /plugins/onnx/): the same logits within float tolerance,
bit-identical preprocessed inputs, the same actions and the same discovered input/output roles.

The page is a real igym participant page (its CSP included); every non-loopback request is
aborted. Playwright runs in a thread of its own, so that this test can share a pytest process
with other tests' Playwright sessions (its sync API allows one per thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from igym_core.testing import LiveServer
from igym_core.testing.support import in_chromium
from igym_onnx import OnnxPolicy, Preprocess
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader
from igym_onnx.testing import gru_model, mlp_model, recurrent_model

STATIC = Path(__file__).resolve().parents[1] / "src" / "igym_onnx" / "static"
MODELS_URL = "/test-models/"


@pytest.fixture
def igym_server(tmp_path: Path) -> Iterator[str]:
    """`igym run` of the example survey study with this plugin loaded (and no other installed one)."""
    if not (STATIC / "ort" / "ort-wasm-simd-threaded.wasm").is_file():
        pytest.fail("onnxruntime-web's files are not built into igym_onnx/static/ort/; run `make build`.")
    with LiveServer(
        "igym_core.examples.survey_study:experiment", tmp_path / "data", plugins=["igym_onnx.plugin"]
    ) as server:
        yield server.url


def _cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)

    def floats(n: int, scale: float = 1.0) -> list[float]:
        return [float(v) for v in (rng.normal(size=n) * scale).astype(np.float32)]

    dict_obs = []
    for _ in range(12):
        mask = [int(v) for v in rng.integers(0, 2, size=4)]
        mask[int(rng.integers(0, 4))] = 1
        dict_obs.append({"position": floats(2, 3), "velocity": [floats(3, 2)], "action_mask": mask})
    return [
        {
            "name": "mlp",
            "model": mlp_model(4, 3, seed=1, extra_outputs=("value",)),
            "config": OnnxPolicy(path="mlp.onnx"),
            "observations": [floats(4, 2) for _ in range(20)],
        },
        {
            "name": "dict",
            "model": mlp_model(5, 4, hidden=(8, 8), seed=5),
            "config": OnnxPolicy(
                path="dict.onnx",
                preprocess=Preprocess(
                    keys=("velocity", "position"),
                    mean=(0.1, -0.2, 0.3, 0.0, 1.0),
                    std=(2.0, 2.0, 1.5, 3.0, 0.5),
                    clip=(-2.5, 2.5),
                ),
            ),
            "observations": dict_obs,
        },
        {
            "name": "rnn",
            "model": recurrent_model(4, 8, 3, seed=2),
            "config": OnnxPolicy(path="rnn.onnx", action="sample", temperature=0.8, seed=42),
            "observations": [{"observation": floats(4), "action_mask": [1, 1, 1]} for _ in range(10)],
        },
        {
            "name": "gru",
            "model": gru_model(4, 6, 3, seed=3),
            "config": OnnxPolicy(path="gru.onnx", preprocess=Preprocess(dtype="float32", mean=0.5)),
            "observations": [floats(4) for _ in range(8)],
        },
        {
            "name": "int",
            "model": mlp_model(3, 5, seed=6, input_dtype="int64"),
            "config": OnnxPolicy(path="int.onnx", preprocess=Preprocess(dtype="int64")),
            "observations": [[int(v) for v in rng.integers(-3, 4, size=3)] for _ in range(6)],
        },
    ]


def _python_side(case: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    import gymnasium

    path = tmp_path / f"{case['name']}.onnx"
    path.write_bytes(case["model"])
    config: OnnxPolicy = case["config"]
    n = {"dict": 4, "int": 5}.get(case["name"], 3)
    first = case["observations"][0]
    space = (
        gymnasium.spaces.Dict(
            {
                k: gymnasium.spaces.Box(-10, 10, shape=np.shape(v))
                for k, v in first.items()
                if k != "action_mask"
            }
            | ({"action_mask": gymnasium.spaces.MultiBinary(n)} if "action_mask" in first else {})
        )
        if isinstance(first, dict)
        else gymnasium.spaces.Box(-10, 10, shape=(len(first),))
    )
    policy = OnnxPolicyLoader().load(
        config,
        agent="bot",
        action_space=gymnasium.spaces.Discrete(n),
        observation_space=space,
        base_dir=tmp_path,
    )
    assert isinstance(policy, OnnxActor)
    steps = []
    for obs in case["observations"]:
        row = policy.model.rows([obs])[0].reshape(-1)
        logits = policy.model.evaluate([policy], [obs])[0]
        steps.append({"row": row, "logits": logits, "action": policy.choose(logits, obs)})
    sig = policy.model.signature
    names = {
        "observation": sig.observation.name,
        "logits": sig.logits.name,
        "states": [[p.input.name, p.output.name, p.batch_axis] for p in sig.states],
    }
    return {"steps": steps, "signature": names}


PAGE_SCRIPT = """
async (cases) => {
  const onnx = await import("/plugins/onnx/igym_onnx.js");
  const plain = (typed) => Array.from(typed, (v) => (typeof v === "bigint" ? Number(v) : v));
  const out = {};
  for (const c of cases) {
    const policy = await onnx.createPolicy(c.url, c.config);
    const steps = [];
    for (const observation of c.observations) {
      const row = onnx.preprocess(c.config.preprocess, observation, c.config.mask_key || "action_mask");
      const { logits, action } = await policy.evaluate(observation);
      steps.push({ row: plain(row), logits: plain(logits), action });
    }
    const s = policy.signature;
    out[c.name] = {
      steps,
      signature: {
        observation: s.observation.name,
        logits: s.logits.name,
        states: s.states.map((p) => [p.input.name, p.output.name, p.batchAxis]),
      },
      ortVersion: onnx.ORT_VERSION,
    };
  }
  return out;
}
"""


def test_python_and_onnxruntime_web_agree(igym_server: str, tmp_path: Path) -> None:
    cases = _cases()
    expected = {case["name"]: _python_side(case, tmp_path) for case in cases}
    models = {f"{MODELS_URL}{case['name']}.onnx": case["model"] for case in cases}
    page_cases = [
        {
            "name": c["name"],
            "url": f"{MODELS_URL}{c['name']}.onnx",
            "config": c["config"].to_json(),
            "observations": c["observations"],
        }
        for c in cases
    ]
    blocked: list[str] = []

    def route(route: Any) -> None:
        url = route.request.url
        path = url.removeprefix(igym_server)
        if path in models:  # the test's models, as if igym served them
            route.fulfill(status=200, body=models[path], content_type="application/octet-stream")
        elif url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    def work(browser: Any) -> Any:
        context = browser.new_context()
        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        responses: dict[str, str] = {}
        page.on("response", lambda r: responses.__setitem__(r.url, r.headers.get("content-type", "")))
        response = page.goto(f"{igym_server}/?PROLIFIC_PID=onnx")
        assert response is not None and "'wasm-unsafe-eval'" in response.headers["content-security-policy"]
        result = page.evaluate(PAGE_SCRIPT, page_cases)
        return result, errors, responses

    result, errors, responses = in_chromium(work)
    assert errors == []
    assert all(not url.startswith(("http://127.0.0.1", "data:")) for url in blocked)
    wasm = [u for u in responses if u.endswith("/plugins/onnx/ort/ort-wasm-simd-threaded.wasm")]
    assert wasm and responses[wasm[0]] == "application/wasm"
    for case in cases:
        name = case["name"]
        got, want = result[name], expected[name]
        assert got["ortVersion"] == "1.30.0"
        assert got["signature"] == want["signature"], name
        assert len(got["steps"]) == len(want["steps"])
        for step, (g, w) in enumerate(zip(got["steps"], want["steps"], strict=True)):
            where = f"{name} step {step}"
            assert np.array(g["row"], dtype=w["row"].dtype).tobytes() == w["row"].tobytes(), where
            np.testing.assert_allclose(
                np.array(g["logits"], dtype=np.float32), w["logits"], rtol=1e-5, atol=1e-5, err_msg=where
            )
            assert g["action"] == w["action"], where
    # The recurrent model's state matters: its logits change although its observations repeat in kind.
    rnn = [s["logits"] for s in expected["rnn"]["steps"]]
    assert not np.allclose(rnn[0], rnn[-1])
    # The masks of the dict case were respected in the browser too.
    for obs, step in zip(cases[1]["observations"], result["dict"]["steps"], strict=True):
        assert obs["action_mask"][step["action"]] == 1
