"""Each build file through the app (Litestar's test client): its content type, Content-Encoding,
a year-long cache under a content-hashed URL, the bytes as on disk, nothing compressed again."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

import igym_unity.plugin
from igym_core.testing import ScriptedParticipant, make_test_app
from igym_unity.testing import write_fake_build

from .support import unity_study

TYPES = {
    "loader": "application/javascript",
    "framework": "application/javascript",
    "code": "application/wasm",
    "data": "application/octet-stream",
}


@pytest.mark.parametrize(
    ("compression", "encoding"), [("none", None), ("gzip", "gzip"), ("brotli", "br"), ("unityweb", None)]
)
def test_each_suffix_is_served_with_its_headers_and_as_it_is_on_disk(
    tmp_path: Path, compression: str, encoding: str | None
) -> None:
    folder = write_fake_build(tmp_path / "build", compression=compression, hashed_names=True)  # type: ignore[arg-type]
    app = make_test_app(unity_study(tmp_path / "build"), tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        scene = p.scene["scene"]
        assert scene["kind"] == "unity"
        urls = scene["build"]
        for role, content_type in TYPES.items():
            url = urls[f"{role}_url"]
            name = url.rsplit("/", 1)[1]
            on_disk = (folder / name).read_bytes()
            # A browser asks for compressed responses; igym must not compress (again) on the fly.
            with client.stream("GET", url, headers={"Accept-Encoding": "gzip, deflate, br"}) as response:
                raw = b"".join(response.iter_raw())
            assert response.status_code == 200, url
            assert response.headers["content-type"].split(";")[0] == content_type
            expected = None if role == "loader" else encoding
            assert response.headers.get("content-encoding") == expected
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert int(response.headers["content-length"]) == len(on_disk)
            assert raw == on_disk  # the file's own bytes: compressed by Unity, never again by igym
            # Security headers of the app apply to these responses too.
            assert response.headers["x-content-type-options"] == "nosniff"


def test_an_unknown_scene_digest_or_file_is_not_found(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    app = make_test_app(unity_study(tmp_path / "build"), tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        url = p.scene["scene"]["build"]["code_url"]
        assert client.get(url).status_code == 200
        prefix, digest, name = url.rsplit("/", 2)
        assert client.get(f"{prefix}/{'0' * 16}/{name}").status_code == 404
        assert client.get(f"{prefix}/{digest}/other.wasm").status_code == 404
        assert client.get(url.replace("/unity/game/", "/unity/nogame/")).status_code == 404
        assert client.get(f"{prefix}/{digest}/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)


def test_the_exports_streaming_assets_are_served_and_nothing_outside_them(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    assets = tmp_path / "build" / "StreamingAssets" / "bundles"
    assets.mkdir(parents=True)
    (assets / "level1.bundle").write_bytes(b"\x00bundle bytes")
    (tmp_path / "secret.txt").write_text("not for participants", encoding="utf-8")
    app = make_test_app(unity_study(tmp_path / "build"), tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        base = p.scene["scene"]["build"]["streaming_assets_url"]
        assert base == "/unity/game/StreamingAssets"
        response = client.get(f"{base}/bundles/level1.bundle")
        assert response.status_code == 200 and response.content == b"\x00bundle bytes"
        assert response.headers["cache-control"] == "no-cache"
        for escape in ("../../secret.txt", "..%2F..%2Fsecret.txt", "bundles/../../../secret.txt", "nothing"):
            assert client.get(f"{base}/{escape}").status_code in (400, 404), escape
        # The build's own files are still served beside it.
        assert client.get(p.scene["scene"]["build"]["loader_url"]).status_code == 200


@pytest.mark.parametrize("compression", ["none", "gzip", "brotli", "unityweb"])
def test_the_page_allows_blob_scripts_only_for_a_build_with_decompression_fallback(
    tmp_path: Path, compression: str
) -> None:
    write_fake_build(tmp_path / "build", compression=compression)  # type: ignore[arg-type]
    app = make_test_app(unity_study(tmp_path / "build"), tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client:
        csp = client.get("/").headers["content-security-policy"]
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src "))
    if compression == "unityweb":  # Unity's loader runs the decompressed framework from a blob: URL
        assert script_src == "script-src 'self' blob: 'wasm-unsafe-eval'"
    else:
        assert script_src == "script-src 'self' 'wasm-unsafe-eval'"
    assert "worker-src" not in csp and "media-src 'self' https:" in csp  # nothing else is widened
