"""The Overcooked examples' instructions page in real Chromium: the kitchen picture and the controls
picture (SVG ``data:`` images made from the game's render objects, igym_cogrid.pictures) load under
the page's Content-Security-Policy, have a size, say what they show, and are drawn: the picture's
pixels hold both chefs' colours, the onions' and the serving hatch's.

Screenshots go to test-artifacts/<test name>/ (look at them).
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from igym_cogrid.render import _ONION, _SERVE, CHEF_COLOURS
from igym_core.testing.pixels import colour_mask, png_pixels
from tests.e2e.test_survey_browser import continue_button, wait_scene

EXAMPLES = {
    "human_ai": ("igym_cogrid.examples.human_ai:experiment", ("You", "Your partner")),
    "human_human": ("igym_cogrid.examples.human_human:experiment", ("Blue chef", "Red chef")),
}


def open_instructions(page: Page, url: str) -> None:
    page.goto(f"{url}/?PROLIFIC_PID=pictures")
    wait_scene(page, "consent")
    page.get_by_role("checkbox", name="I am 18 or older and agree to take part.").check()
    continue_button(page).click()
    wait_scene(page, "instructions")
    expect(page.get_by_role("heading", level=1, name="How to play")).to_be_visible()


def loaded_size(page: Page, alt_start: str) -> dict[str, float]:
    """The ``<img>`` whose alt text starts with ``alt_start``, once loaded: its natural and shown size."""
    image = page.locator(f'img[alt^="{alt_start}"]')
    expect(image).to_have_count(1)
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000
    )
    return image.evaluate(
        "(img) => ({natural_width: img.naturalWidth, natural_height: img.naturalHeight,"
        " shown_width: img.getBoundingClientRect().width, shown_height: img.getBoundingClientRect().height,"
        " src: img.getAttribute('src').slice(0, 26)})"
    )


def pixel_count(pixels: np.ndarray, colour: str) -> int:
    return int(colour_mask(pixels, colour, tolerance=24).sum())


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_instructions_show_the_kitchen_and_the_controls(live_server, new_page, shots, example):
    target, chef_names = EXAMPLES[example]
    server = live_server(target)
    page = new_page()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    open_instructions(page, server.url)

    kitchen = loaded_size(page, "The kitchen:")
    controls = loaded_size(page, "The controls:")
    for size in (kitchen, controls):
        assert size["src"] == "data:image/svg+xml;base64,"
        assert size["natural_width"] > 300 and size["natural_height"] > 150, size
        assert size["shown_width"] > 300 and size["shown_height"] > 150, size  # fits the page, not squashed
    # The captions under them say what they are.
    expect(page.locator("figure.igym-picture figcaption")).to_have_count(2)
    expect(page.locator("figure.igym-picture figcaption").nth(1)).to_contain_text("Arrow keys move your chef")
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    directory = shots(page, f"{example}-instructions").parent

    # The kitchen as drawn in the page: both chefs, onions and the green hatch are in its pixels.
    png = page.locator('img[alt^="The kitchen:"]').screenshot(animations="disabled")
    (directory / f"{example}-kitchen.png").write_bytes(png)
    pixels = png_pixels(png)
    for colour in (*CHEF_COLOURS.values(), _ONION, _SERVE):
        assert pixel_count(pixels, colour) > 150, (colour, pixel_count(pixels, colour))
    controls_png = page.locator('img[alt^="The controls:"]').screenshot(animations="disabled")
    (directory / f"{example}-controls.png").write_bytes(controls_png)
    assert pixel_count(png_pixels(controls_png), "#f8fafc") > 2000  # the white key caps
    # The alt text names the chefs as the picture's callouts do.
    alt = page.locator('img[alt^="The kitchen:"]').get_attribute("alt") or ""
    assert all(name.lower() in alt.lower() for name in chef_names), alt
