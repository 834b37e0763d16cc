"""Routes and browser files contributed by plugins are served by the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import get
from litestar.testing import TestClient

from igym_core import hookimpl
from igym_core.plugins.assets import ClientAssets
from igym_core.testing import make_test_app


class RoutesAndAssets:
    def __init__(self, static_dir: Path) -> None:
        self.static_dir = static_dir

    @hookimpl
    def igym_register_routes(self, settings: Any) -> list[Any]:
        @get("/plugin-status", sync_to_thread=False)
        def status() -> dict[str, Any]:
            return {"max_message_bytes": settings.max_message_bytes}

        return [status]

    @hookimpl
    def igym_register_client_assets(self) -> list[ClientAssets]:
        return [ClientAssets(plugin="widgets", directory=self.static_dir, entry="widgets.js")]


@pytest.fixture
def client(tmp_path: Path) -> Any:
    static = tmp_path / "static"
    static.mkdir()
    (static / "widgets.js").write_text("export function register(api) {}\n")
    app = make_test_app(
        "igym_core.examples.survey_study:experiment",
        tmp_path / "data",
        extra_plugins=[RoutesAndAssets(static)],
        max_message_bytes=4096,
    )
    with TestClient(app=app) as client:
        yield client


def test_a_plugin_route_is_served_with_the_settings_it_was_given(client: Any) -> None:
    response = client.get("/plugin-status")
    assert response.status_code == 200
    assert response.json() == {"max_message_bytes": 4096}


def test_plugin_client_modules_are_served_and_listed_in_the_page(client: Any) -> None:
    module = client.get("/plugins/widgets/widgets.js")
    assert module.status_code == 200
    assert "export function register" in module.text
    assert "javascript" in module.headers["content-type"]
    page = client.get("/")
    assert '"modules": ["/plugins/widgets/widgets.js"]' in page.text
    assert client.get("/plugins/widgets/../../pyproject.toml").status_code == 404
