"""The renderer: every layout's kitchen, the chefs (facing, holding, colours, "you"), the pots'
onions and cooking bar, items on counters, the score and time bar, and the deltas after frame one."""

from __future__ import annotations

import pytest

from igym_cogrid.bots import PlannerPolicy
from igym_cogrid.env import AGENTS, COOK_STEPS, DISH, DOWN, LAYOUTS, NOOP, ONION, SOUP, UP, make_env
from igym_cogrid.render import CHEF_COLOURS, HUD_HEIGHT, canvas_size, draw, draw_you_chef_0, tile_size
from igym_core.rendering.delta import DeltaEncoder
from igym_core.rendering.objects import Circle, Text


def by_id(objects: list) -> dict:
    found = {o.id: o for o in objects}
    assert len(found) == len(objects)  # ids are unique
    return found


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_kitchen_fits_its_canvas_and_labels_its_stations(layout):
    env = make_env(layout=layout)
    env.reset(seed=1)
    objects = by_id(draw(env))
    width, height = canvas_size(layout)
    tile = tile_size(layout)
    assert width <= 720 and height == env.height * tile + HUD_HEIGHT
    for obj in objects.values():
        assert 0 <= obj.x <= width and 0 <= obj.y <= height, obj.id
    labels = {o.text for o in objects.values() if isinstance(o, Text) and o.permanent}
    assert labels == {"onions", "dishes", "serve"}
    pots = [(r, c) for r, c, _n, _t in env.pots()]
    assert all(f"cell_{r}_{c}_pot" in objects for r, c in pots)
    for agent, (row, col, _facing, _item) in zip(AGENTS, env.chefs(), strict=True):
        body = objects[f"{agent}_body"]
        assert body.fill == CHEF_COLOURS[agent]
        assert (body.x, body.y) == (col * tile + tile / 2, HUD_HEIGHT + row * tile + tile / 2)
        assert body.tween_ms == 0  # an episode's first frame: no glide from the last episode


def test_the_chefs_colours_are_far_apart():
    (r1, g1, b1), (r2, g2, b2) = (
        tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in CHEF_COLOURS.values()
    )
    assert abs(r1 - r2) + abs(g1 - g2) + abs(b1 - b2) > 300


def test_chefs_face_hold_and_glide():
    env = make_env()
    env.reset(seed=0)  # chef_0 at (2, 3) facing left, chef_1 at (1, 3)
    env.step({"chef_0": DOWN, "chef_1": NOOP})  # turns to face the serving hatch
    down = by_id(draw(env))
    env.step({"chef_0": UP, "chef_1": NOOP})  # blocked by chef_1: turns up, no eyes (its back)
    up = by_id(draw(env))
    assert down["chef_0_eye0"].y > down["chef_0_body"].y and "chef_0_eye0" not in up
    assert down["chef_0_body"].tween_ms is None  # glides over one frame interval
    assert "chef_0_held" not in down
    # Put things in the chef's hands and look: an onion, a dish, a soup in a dish.
    pictures = {}
    for item in (ONION, DISH, SOUP):
        state = env.get_state()
        state["cogrid"]["agent_inv"][0] = [item]
        env.set_state(state)
        pictures[item] = by_id(draw(env))
    assert isinstance(pictures[ONION]["chef_0_held"], Circle) and "chef_0_held_sprout" in pictures[ONION]
    assert "chef_0_held_rim" in pictures[DISH] and "chef_0_held_soup" not in pictures[DISH]
    assert "chef_0_held_soup" in pictures[SOUP]
    for picture in pictures.values():
        assert picture["chef_0_held"].y < picture["chef_0_body"].y  # held out in front (up)


def test_each_chefs_objects_are_owned_by_its_seat_and_nothing_else_is():
    """The participant's page draws objects owned by their seat without gliding (the core's owner
    rule), so their own chef answers their keys at once."""
    env = make_env()
    env.reset(seed=0)
    state = env.get_state()
    state["cogrid"]["agent_inv"][0] = [SOUP]
    env.set_state(state)
    objects = by_id(draw_you_chef_0(env))
    for ident, obj in objects.items():
        agent = next((a for a in AGENTS if ident.startswith(f"{a}_")), None)
        assert obj.owner == agent, ident
    assert {"chef_0_body", "chef_0_hat", "chef_0_held_soup", "chef_0_you", "chef_1_body"} <= set(objects)


def test_you_labels_the_participants_chef_only():
    env = make_env()
    env.reset(seed=0)
    assert "chef_0_you" in by_id(draw_you_chef_0(env)) and "chef_1_you" not in by_id(draw_you_chef_0(env))
    assert not any(i.endswith("_you") for i in by_id(draw(env)))


def test_pots_show_onions_then_a_cooking_bar_then_soup_and_the_bar_counts():
    env = make_env(max_steps=600, fps=10)
    bots = [PlannerPolicy(), PlannerPolicy()]
    obs, _ = env.reset(seed=0)
    seen = {"onions": set(), "cooking": [], "ready": False, "on_counter": False}
    while env.agents and env.soups_delivered < 2:
        obs, *_ = env.step({a: b.act(obs[a]) for a, b in zip(AGENTS, bots, strict=True)})
        objects = by_id(draw(env))
        ((row, col, onions, left),) = env.pots()
        pot = f"pot_{row}_{col}"
        if onions < 3:
            assert sum(f"{pot}_onion{i}" in objects for i in range(3)) == onions
            seen["onions"].add(onions)
            assert f"{pot}_bar" not in objects
        elif left > 0:
            assert objects[f"{pot}_state"].text == "cooking"
            fill = objects[f"{pot}_fill"].width if f"{pot}_fill" in objects else 0  # none at the start
            seen["cooking"].append(fill / objects[f"{pot}_bar"].width)
        else:
            seen["ready"] = True
            assert objects[f"{pot}_state"].text == "ready!" and f"{pot}_soup" in objects
    assert seen["onions"] >= {0, 1, 2} and seen["ready"]
    runs = [[seen["cooking"][0]]]  # one run of the bar per soup cooked: it only fills up
    for fill in seen["cooking"][1:]:
        if fill < runs[-1][-1]:
            runs.append([])
        runs[-1].append(fill)
    assert len(runs) >= 2 and all(run == sorted(run) and run[0] < 0.1 < 0.9 < run[-1] for run in runs)
    hud = by_id(draw(env))
    assert hud["hud_score"].text == "Score 40   (2 soups served)"
    seconds = (600 - env.steps) / 10
    assert hud["hud_time"].text == f"Time {int(seconds + 0.999) // 60}:{int(seconds + 0.999) % 60:02d}"
    assert len(seen["cooking"]) >= 2 * (COOK_STEPS - 2)


def test_items_on_counters_are_drawn_and_later_frames_send_only_changes():
    env = make_env()
    env.reset(seed=0)
    state = env.get_state()
    state["cogrid"]["object_state_map"][2][0] = ONION  # an onion left on the counter at (2, 0)
    env.set_state(state)
    objects = by_id(draw(env))
    assert "on_2_0" in objects and "on_2_0_sprout" in objects
    encoder = DeltaEncoder()
    first = encoder.update(draw(env))
    for _ in range(2):  # the first step changes the chefs' tween (0 at an episode's start), once
        env.step({"chef_0": NOOP, "chef_1": NOOP})
        second = encoder.update(draw(env))
    assert len(first.add) > 60
    changed = {o["id"] for o in second.upd} | {o["id"] for o in second.add}
    assert changed <= {"hud_time"} and not second.rm
