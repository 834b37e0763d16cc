"""The instructions' pictures (igym_cogrid.pictures): for every layout, the kitchen is drawn from the
game's own render objects, every thing in it is named by a callout whose line ends at it, callouts
do not overlap and stay in the picture; the examples' instructions pages carry both pictures."""

from __future__ import annotations

import base64
import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from igym_cogrid.env import DELIVERY, DISH_PILE, LAYOUTS, ONION_PILE, POT, make_env
from igym_cogrid.examples import human_ai, human_human
from igym_cogrid.pictures import _CHAR_WIDTH, controls_picture, kitchen_picture
from igym_cogrid.render import draw
from igym_core.rendering.objects import Circle, Polygon, Rect

NS = "{http://www.w3.org/2000/svg}"
NAMES = {ONION_PILE: "Onion crate", POT: "Pot", DISH_PILE: "Dish rack", DELIVERY: "Serving hatch"}


def texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{NS}text"))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_kitchen_picture_is_the_game_drawing_with_every_thing_named(layout):
    root = ET.fromstring(kitchen_picture(layout))
    env = make_env(layout=layout, max_steps=1)
    env.reset(seed=0)
    drawn = [obj for obj in draw(env) if not obj.id.startswith("hud_")]
    # Every shape of the game's drawing is in the picture (plus the callouts' lines and dots).
    for cls, tag in ((Rect, "rect"), (Circle, "circle"), (Polygon, "polygon")):
        in_game = sum(isinstance(obj, cls) for obj in drawn)
        assert len(list(root.iter(f"{NS}{tag}"))) >= in_game, (tag, in_game)
    fills = {el.get("fill") for el in root.iter()}
    assert {"#2563eb", "#dc2626"} <= fills  # both chefs, in the game's colours
    words = [el.text for el in texts(root)]
    kinds = {int(k) for k in env.cells()[0].ravel()}
    for kind, name in NAMES.items():
        assert (name in words) == (kind in kinds), (name, words)
    assert "You" in words and "Your partner" in words
    two = [el.text for el in texts(ET.fromstring(kitchen_picture(layout, None)))]
    assert "Blue chef" in two and "Red chef" in two and "You" not in two


def _boxes(root: ET.Element) -> list[tuple[float, float, float, float]]:
    """The callouts' name lines as boxes (estimated width, as the layout estimates it)."""
    boxes = []
    elements = texts(root)
    for el, hint in itertools.pairwise(elements):
        size = float(el.get("font-size"))
        if size != 17:  # names only, each followed by its hint (the game's own labels are smaller)
            continue
        width = max(len(el.text) * size, len(hint.text) * float(hint.get("font-size"))) * _CHAR_WIDTH
        x = float(el.get("x"))
        left = {"start": x, "middle": x - width / 2, "end": x - width}[el.get("text-anchor")]
        top = float(el.get("y")) - 0.93 * size  # the baseline sits 0.93 font sizes below the top
        boxes.append((left, top, left + width, top + (17 + 13) * 1.25))  # the name and the hint below
    return boxes


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_callouts_do_not_overlap_and_stay_inside_and_their_lines_reach_the_kitchen(layout):
    root = ET.fromstring(kitchen_picture(layout))
    vx, vy, vw, vh = (float(v) for v in root.get("viewBox").split())
    boxes = _boxes(root)
    assert len(boxes) >= 6
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        assert vx <= x0 and x1 <= vx + vw and vy <= y0 and y1 <= vy + vh + 1, (layout, boxes[i])
        for ox0, oy0, ox1, oy1 in boxes[i + 1 :]:
            assert x1 <= ox0 or ox1 <= x0 or y1 <= oy0 or oy1 <= y0, (layout, boxes[i], (ox0, oy0, ox1, oy1))
    # Each line ends at a dot, inside the kitchen's drawing (the floor and counters' rectangles).
    cells = [el for el in root.iter(f"{NS}rect") if el.get("fill") in ("#a16207", "#f1e7d0", "#eadcc0")]
    kx0 = min(float(el.get("x")) for el in cells)
    ky0 = min(float(el.get("y")) for el in cells)
    kx1 = max(float(el.get("x")) + float(el.get("width")) for el in cells)
    ky1 = max(float(el.get("y")) + float(el.get("height")) for el in cells)
    dots = [el for el in root.iter(f"{NS}circle") if el.get("r") == "4"]
    assert len(dots) >= 6
    for dot in dots:
        assert kx0 <= float(dot.get("cx")) <= kx1 and ky0 <= float(dot.get("cy")) <= ky1


def test_the_controls_picture_shows_four_arrows_and_the_space_bar():
    root = ET.fromstring(controls_picture())
    assert len(list(root.iter(f"{NS}polygon"))) == 4
    words = {el.text for el in texts(root)}
    assert {"Space", "Arrow keys", "Space bar", "move your chef", "pick up, put down, use"} <= words


@pytest.mark.parametrize(("module", "chefs"), [(human_ai, "You"), (human_human, "Blue chef")])
def test_the_examples_instructions_carry_both_pictures(module, chefs):
    html = module.instructions.rendered_body(Path(module.__file__).parent)  # the page's body_html
    sources = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', html)
    assert len(sources) == 2, html[:400]
    kitchen, controls = (ET.fromstring(base64.b64decode(data)) for data, _alt in sources)
    assert chefs in [el.text for el in texts(kitchen)]
    assert "Space bar" in [el.text for el in texts(controls)]
    assert sources[0][1].startswith("The kitchen:") and sources[1][1].startswith("The controls:")
