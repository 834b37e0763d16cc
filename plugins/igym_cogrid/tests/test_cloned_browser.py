"""The shipped cloned chef gives the same logits and actions in Chromium (onnxruntime-web, served by
igym from /plugins/onnx/) as on the server (onnxruntime): its features are nodes of the graph, so a
browser-run game feeds it the raw compact observation exactly as the server does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from igym_cogrid.bots import PlannerPolicy, cloned_policy, model_path
from igym_cogrid.env import AGENTS, make_env
from igym_core.testing import LiveServer
from igym_core.testing.support import in_chromium
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader

MODEL_URL = "/test-models/cogrid_cramped_room.onnx"

PAGE_SCRIPT = """
async ({url, config, observations}) => {
  const onnx = await import("/plugins/onnx/igym_onnx.js");
  const policy = await onnx.createPolicy(url, config);
  const steps = [];
  for (const observation of observations) {
    const { logits, action } = await policy.evaluate(observation);
    steps.push({ logits: Array.from(logits), action });
  }
  return steps;
}
"""


@pytest.fixture
def igym_server(tmp_path: Path) -> Iterator[str]:
    with LiveServer(
        "igym_core.examples.survey_study:experiment", tmp_path / "data", plugins=["igym_onnx.plugin"]
    ) as server:
        yield server.url


def kitchen_observations() -> list[list[int]]:
    """Both chefs' observations every 5th step of a round of two planners (items, pots, soups)."""
    env = make_env(layout="cramped_room", max_steps=400)
    bots = {agent: PlannerPolicy(seed=i) for i, agent in enumerate(AGENTS)}
    observations, _ = env.reset(seed=5)
    seen = []
    while env.agents:
        if env.steps % 5 == 0:
            seen += [[int(v) for v in observations[a]] for a in AGENTS]
        observations = env.step({a: bots[a].act(observations[a]) for a in AGENTS})[0]
    return seen


def test_the_cloned_chef_acts_alike_on_the_server_and_in_the_browser(igym_server: str) -> None:
    observations = kitchen_observations()
    env = make_env(layout="cramped_room")
    actor = OnnxPolicyLoader().load(
        cloned_policy(),
        agent="chef_1",
        action_space=env.action_space("chef_1"),
        observation_space=env.observation_space("chef_1"),
        base_dir=None,
    )
    assert isinstance(actor, OnnxActor)
    expected = [actor.model.evaluate([actor], [np.asarray(o)])[0] for o in observations]
    model = model_path("cramped_room").read_bytes()

    def route(route: Any) -> None:
        url = route.request.url
        if url == f"{igym_server}{MODEL_URL}":
            route.fulfill(status=200, body=model, content_type="application/octet-stream")
        elif url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def work(browser: Any) -> Any:
        context = browser.new_context()
        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{igym_server}/?PROLIFIC_PID=cogrid")
        config = {**cloned_policy().to_json(), "path": MODEL_URL}
        steps = page.evaluate(PAGE_SCRIPT, {"url": MODEL_URL, "config": config, "observations": observations})
        context.close()
        return steps, errors

    steps, errors = in_chromium(work)
    assert errors == []
    assert len(steps) == len(observations) > 100
    actions = [int(np.argmax(w)) for w in expected]
    print(f"cloned chef, {len(steps)} observations: actions in the browser {sorted(set(actions))}")
    assert len(set(actions)) >= 5  # real play: moves, interactions, waiting
    for i, (got, want) in enumerate(zip(steps, expected, strict=True)):
        np.testing.assert_allclose(np.array(got["logits"], np.float32), want, rtol=1e-4, atol=1e-4, err_msg=i)
        assert got["action"] == actions[i], i
