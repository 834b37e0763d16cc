"""Errors raised anywhere (a plugin's route included) are answered with their status only, with the
security headers, and a crash is logged with its traceback instead of being shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import get
from litestar.exceptions import HTTPException
from litestar.testing import TestClient
from structlog.testing import capture_logs

from igym_core import hookimpl
from igym_core.testing import make_test_app

SECRET = "/opt/lab/secret-install-path/config.toml"


class FailingRoutes:
    @hookimpl
    def igym_register_routes(self, settings: Any) -> list[Any]:
        @get("/crash", sync_to_thread=False)
        def crash() -> None:
            raise RuntimeError(f"could not open {SECRET}")

        @get("/refuse", sync_to_thread=False)
        def refuse() -> None:
            raise HTTPException(status_code=409, detail=f"{SECRET} is locked", extra={"path": SECRET})

        return [crash, refuse]


@pytest.fixture
def client(tmp_path: Path) -> Any:
    app = make_test_app(
        "igym_core.examples.survey_study:experiment", tmp_path / "data", extra_plugins=[FailingRoutes()]
    )
    with TestClient(app=app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "status", "phrase"), [("/crash", 500, "Internal Server Error"), ("/refuse", 409, "Conflict")]
)
def test_errors_show_their_status_only(client: Any, path: str, status: int, phrase: str) -> None:
    with capture_logs() as logs:
        response = client.get(path)
    assert response.status_code == status
    assert response.json() == {"status_code": status, "detail": phrase}
    assert SECRET not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if status == 500:
        [failed] = [entry for entry in logs if entry["event"] == "request_failed"]
        assert failed["path"] == "/crash" and isinstance(failed["exc_info"], RuntimeError)


def test_the_stats_route_refuses_without_the_token_in_process(client: Any) -> None:
    response = client.get("/stats", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json() == {"status_code": 401, "detail": "Unauthorized"}
    token = client.app.state.operator_token
    assert client.get("/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
