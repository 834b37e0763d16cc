"""Render objects drawn as SVG (igym_core.rendering.svg): each shape where the browser's view puts
it, in depth order, text escaped, and a data: URL that decodes to the same document."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, Sprite, Text
from igym_core.rendering.svg import svg_data_url, to_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def shapes(root: ET.Element) -> list[ET.Element]:
    return [el for el in root if el.tag != f"{NS}title"]


def test_each_shape_is_drawn_where_the_view_draws_it():
    root = parse(
        to_svg(
            [
                Rect(id="r", x=50, y=40, width=20, height=10, fill="#ff0000", stroke="#000", line_width=2),
                Circle(id="c", x=10, y=12, radius=5, fill=None, stroke="#00ff00", alpha=0.5),
                Line(id="l", x=100, y=100, points=[(0, 0), (10, -5)], color="#123456", line_width=3),
                Polygon(id="p", x=5, y=5, points=[(0, 0), (4, 0), (0, 4)], fill="#abcdef", angle=90),
            ],
            width=200,
            height=150,
        )
    )
    assert root.get("width") == "200" and root.get("height") == "150" and root.get("viewBox") == "0 0 200 150"
    rect, circle, line, polygon = shapes(root)
    assert (rect.get("x"), rect.get("y"), rect.get("width"), rect.get("height")) == ("40", "35", "20", "10")
    assert (rect.get("fill"), rect.get("stroke"), rect.get("stroke-width")) == ("#ff0000", "#000000", "2")
    assert (circle.get("cx"), circle.get("cy"), circle.get("r")) == ("10", "12", "5")
    assert circle.get("fill") == "none" and circle.get("opacity") == "0.5"
    assert line.tag == f"{NS}polyline" and line.get("points") == "100,100 110,95"
    assert line.get("stroke") == "#123456" and line.get("fill") == "none"
    assert polygon.get("points") == "5,5 9,5 5,9" and polygon.get("transform") == "rotate(90 5 5)"


def test_objects_are_drawn_in_depth_order_and_ties_keep_their_order():
    objects = [
        Rect(id="top", x=0, y=0, width=1, height=1, depth=5),
        Rect(id="bottom_a", x=1, y=0, width=1, height=1, depth=0),
        Rect(id="bottom_b", x=2, y=0, width=1, height=1, depth=0),
    ]
    xs = [el.get("x") for el in shapes(parse(to_svg(objects, width=10, height=10)))]
    assert xs == ["0.5", "1.5", "-0.5"]


def test_text_is_anchored_by_its_origin():
    root = parse(
        to_svg(
            [
                Text(id="a", x=10, y=100, text="left top", font_size=20),
                Text(id="b", x=10, y=100, text="centre", font_size=20, origin_x=0.5, origin_y=0.5),
                Text(id="c", x=10, y=100, text="two\nlines", font_size=20, origin_x=1, origin_y=1),
            ],
            width=200,
            height=200,
        )
    )
    top, centre, bottom = shapes(root)
    assert top.get("text-anchor") == "start" and float(top.get("y")) > 100  # baseline below the top
    assert centre.get("text-anchor") == "middle" and 100 < float(centre.get("y")) < 110
    assert bottom.get("text-anchor") == "end" and float(bottom.get("y")) < 100 - 20  # two lines above y
    assert [span.text for span in bottom] == ["two", "lines"]


def test_background_title_and_view_box():
    root = parse(
        to_svg(
            [], width=100, height=50, background="#1f2937", view_box=(-10, 20, 100, 50), title="A <kitchen>"
        )
    )
    assert root.get("viewBox") == "-10 20 100 50"
    title, background = list(root)
    assert title.text == "A <kitchen>"
    assert (background.get("x"), background.get("y"), background.get("fill")) == ("-10", "20", "#1f2937")


def test_a_sprite_is_refused_with_what_to_do():
    with pytest.raises(RenderError, match="needs the scene's image assets"):
        to_svg([Sprite(id="car", image="car")], width=10, height=10)


def readable(text: str) -> str:
    """What XML can carry of ``text``: control characters other than tab and newline become U+FFFD."""
    return "".join(
        "\ufffd" if (ord(c) < 32 and c not in "\t\n") or c in "\x7f\ufffe\uffff" else c for c in text
    )


@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), family=st.text(max_size=20))
def test_any_text_survives_as_text(text, family):
    root = parse(to_svg([Text(id="t", text=text, font_family=family)], width=10, height=10, title="t" + text))
    title, element = list(root)
    written = "\n".join(span.text or "" for span in element) if len(element) else element.text or ""
    assert written == readable(text)
    assert title.text == "t" + readable(text)
    assert element.get("font-family") == readable(family)


def test_the_data_url_decodes_to_the_document():
    svg = to_svg([Circle(id="c", x=1, y=1, radius=1)], width=2, height=2)
    url = svg_data_url(svg)
    assert url.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).decode("utf-8") == svg
