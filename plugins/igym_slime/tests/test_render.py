"""The renderer: the objects of a frame, where they are, and what goes over the wire after the first."""

from __future__ import annotations

import math
import random

from igym_core.rendering.delta import DeltaEncoder
from igym_core.rendering.objects import Circle, Polygon, Text
from igym_slime.env import AGENTS, SlimeVolleyEnv
from igym_slime.render import HEIGHT, WIDTH, draw, to_screen

MOVING = {
    "left_slime",
    "left_eye",
    "left_pupil",
    "right_slime",
    "right_eye",
    "right_pupil",
    "ball",
    "ball_shadow",
}


def objects_by_id(env: SlimeVolleyEnv) -> dict:
    objects = draw(env)
    by_id = {o.id: o for o in objects}
    assert len(by_id) == len(objects)  # ids are unique
    return by_id


def test_a_frame_has_the_court_the_slimes_with_eyes_the_ball_and_the_scores():
    env = SlimeVolleyEnv()
    env.reset(seed=0)
    objects = objects_by_id(env)
    assert {"sand", "net", "net_top", "sea", "sun"} <= set(objects)
    assert set(objects) >= MOVING
    assert {f"{a}_life{i}" for a in AGENTS for i in range(5)} <= set(objects)
    assert objects["left_score"].text == "0" and isinstance(objects["left_score"], Text)
    scores = {o.id for o in objects.values() if "score" in o.id or "life" in o.id}
    scenery = [o for o in objects.values() if o.id not in MOVING | scores]
    assert scenery and all(o.permanent for o in scenery)
    assert isinstance(objects["left_slime"], Polygon) and isinstance(objects["ball"], Circle)
    for o in objects.values():
        assert 0 <= o.x <= WIDTH and 0 <= o.y <= HEIGHT, o
    assert env.render() == list(objects.values())


def test_slimes_and_ball_are_drawn_where_the_env_has_them_and_pupils_look_at_the_ball():
    env = SlimeVolleyEnv()
    env.reset(seed=0)
    state = env.get_state()
    env.set_state({**state, "ball": [-5.0, 10.0, 0.0, 0.0]})
    objects = objects_by_id(env)
    assert (objects["ball"].x, objects["ball"].y) == to_screen(-5.0, 10.0)
    assert (objects["left_slime"].x, objects["left_slime"].y) == to_screen(-12.0, 1.5)
    for agent in AGENTS:
        eye, pupil = objects[f"{agent}_eye"], objects[f"{agent}_pupil"]
        to_ball = (objects["ball"].x - eye.x, objects["ball"].y - eye.y)
        to_pupil = (pupil.x - eye.x, pupil.y - eye.y)
        cosine = (to_ball[0] * to_pupil[0] + to_ball[1] * to_pupil[1]) / (
            math.hypot(*to_ball) * math.hypot(*to_pupil)
        )
        assert cosine > 0.99, agent  # the pupil is offset straight towards the ball
        assert math.hypot(*to_pupil) + pupil.radius <= eye.radius  # and stays inside the eye
    # A lost point shows in the score and the lives.
    env.set_state({**state, "lives": [3, 5]})
    objects = objects_by_id(env)
    assert objects["right_score"].text == "2" and objects["left_score"].text == "0"
    assert objects["left_life2"].fill is not None and objects["left_life3"].fill is None
    # A ball above the picture gets a marker at the top edge.
    env.set_state({**state, "ball": [3.0, 30.0, 0.0, 0.0]})
    assert objects_by_id(env)["ball_marker"].y < 20


def test_after_the_first_frame_only_moving_things_are_sent():
    env = SlimeVolleyEnv()
    env.reset(seed=2)
    encoder = DeltaEncoder()
    first = encoder.update(draw(env))
    assert len(first.add) > 30
    rng = random.Random(0)
    sent: set[str] = set()
    for _ in range(200):
        env.step({a: rng.randrange(6) for a in AGENTS})
        delta = encoder.update(draw(env))
        assert not delta.add or {o["id"] for o in delta.add} <= {"ball_marker"}
        sent |= {o["id"] for o in delta.upd}
        for change in delta.upd:
            if change["id"] in ("left_slime", "right_slime"):
                assert set(change) <= {"id", "x", "y", "tween_ms"}  # the shape itself is never resent
    scores = {f"{a}_{part}" for a in AGENTS for part in ("score", *(f"life{i}" for i in range(5)))}
    assert sent - MOVING <= scores
