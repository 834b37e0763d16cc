"""What a real ``igym run`` serves for a browser-run scene: the manifest, Pyodide's files, micropip,
the wheels and the package index, by content hash, cached for a year, with the right media types."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from igym_core.testing import LiveServer
from igym_pyodide_p2p.assets import IMMUTABLE

STUDY = Path(__file__).resolve().parent / "studies" / "packages_slime.py"
TARGET = f"{STUDY}:experiment"
BASE = "/plugins/pyodide_p2p"
MEDIA = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".json": "application/json",
    ".whl": "application/octet-stream",
}


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with LiveServer(TARGET, tmp_path_factory.mktemp("data") / "data", cwd=STUDY.parent) as server:
        yield server.url


def test_every_file_has_a_content_hashed_url_immutable_caching_and_its_media_type(server: str) -> None:
    status, headers, body = fetch(f"{server}{BASE}/manifest.json")
    assert status == 200 and headers["cache-control"] == "no-cache"
    manifest = json.loads(body)

    # Pyodide's files: one URL folder named by the hash of all of them (names and contents).
    pyodide = manifest["pyodide"]
    assert pyodide["version"] == "314.0.7"
    names = sorted(f["name"] for f in pyodide["files"])
    assert {
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
    } <= set(names)
    digest = hashlib.sha256()
    for entry in sorted(pyodide["files"], key=lambda f: f["name"]):
        status, headers, data = fetch(server + entry["url"])
        assert status == 200, entry
        assert headers["cache-control"] == IMMUTABLE, entry
        assert headers["content-type"].split(";")[0] == MEDIA[Path(entry["name"]).suffix], entry
        assert len(data) == entry["bytes"]
        digest.update(entry["name"].encode() + b"\0" + data)
        # A browser that accepts gzip gets the gzipped twin of the large text and WebAssembly files.
        status, headers, packed = fetch(server + entry["url"], {"Accept-Encoding": "gzip, br"})
        assert status == 200 and headers["cache-control"] == IMMUTABLE
        assert len(packed) == entry["gzip_bytes"]
        if entry["name"] != "python_stdlib.zip":  # already compressed
            assert headers["content-encoding"] == "gzip" and "Accept-Encoding" in headers["vary"]
            assert gzip.decompress(packed) == data
            assert headers["content-type"].split(";")[0] == MEDIA[Path(entry["name"]).suffix]
    assert pyodide["index_url"] == f"{BASE}/pyodide/{digest.hexdigest()[:20]}/"
    assert pyodide["gzip_bytes"] < pyodide["bytes"] / 2
    assert pyodide["bytes"] == sum(f["bytes"] for f in pyodide["files"]) > 10_000_000

    # micropip and the scene's wheels: each URL names the SHA-256 of its bytes.
    scene = manifest["scenes"]["slime"]
    assert {w["project"] for w in scene["wheels"]} == {"attrs", "igym-core", "igym-slime", "igym-pyodide-p2p"}
    assert scene["imports"]["env_factory"] == "igym_slime.env:make_env"
    assert scene["imports"]["policy:right"] == "igym_slime.bots:ScriptedPolicy"
    for entry in [manifest["micropip"], *scene["wheels"]]:
        status, headers, data = fetch(server + entry["url"])
        assert status == 200 and headers["cache-control"] == IMMUTABLE
        assert entry["url"].split("/")[-2] == hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
    assert scene["bytes"] == sum(w["bytes"] for w in scene["wheels"])
    # What every participant's browser receives does not say where igym is installed.
    assert str(Path(__file__).resolve().parents[3]) not in body.decode()
    assert "igym-slime: igym's index: built from the source tree of igym-slime" in body.decode()

    # A URL whose hash is not the file's (an old deployment's, a guess) is not served.
    wasm = next(f for f in pyodide["files"] if f["name"] == "pyodide.asm.wasm")["url"]
    for url in (
        wasm.replace(pyodide["index_url"], f"{BASE}/pyodide/{'0' * 20}/"),
        f"{pyodide['index_url']}package.json",
        f"{BASE}/files/{'0' * 64}/attrs-1-py3-none-any.whl",
        scene["wheels"][0]["url"].rsplit("/", 1)[0] + "/other-1.0-py3-none-any.whl",
    ):
        assert fetch(server + url)[0] == 404, url


def test_the_package_index_lists_every_wheel_in_html_and_json(server: str) -> None:
    manifest = json.loads(fetch(f"{server}{BASE}/manifest.json")[2])
    wheels = {w["project"]: w for w in manifest["scenes"]["slime"]["wheels"]}
    status, headers, body = fetch(f"{server}{manifest['index_url']}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    for project in ("attrs", "igym-core", "igym-slime", "micropip"):
        assert f'href="{BASE}/simple/{project}/"' in page
    # PEP 503: any spelling of a name finds the project; links carry the hash.
    status, _headers, body = fetch(f"{server}{BASE}/simple/IGYM_Slime/")
    assert status == 200
    wheel = wheels["igym-slime"]
    assert f'href="{server}{wheel["url"]}#sha256={wheel["sha256"]}"' in body.decode()
    # PEP 691, as micropip asks for it.
    status, headers, body = fetch(
        f"{server}{BASE}/simple/attrs/", {"Accept": "application/vnd.pypi.simple.v1+json, */*;q=0.01"}
    )
    assert status == 200 and headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    data = json.loads(body)
    assert data["name"] == "attrs" and data["versions"] == [wheels["attrs"]["version"]]
    assert data["files"] == [
        {
            "filename": wheels["attrs"]["filename"],
            "url": server + wheels["attrs"]["url"],
            "hashes": {"sha256": wheels["attrs"]["sha256"]},
        }
    ]
    assert fetch(f"{server}{BASE}/simple/numpy/")[0] == 404


def test_only_the_runtime_files_may_fetch_from_the_extra_index(tmp_path: Path) -> None:
    with LiveServer(
        TARGET,
        tmp_path / "data",
        cwd=STUDY.parent,
        env={"IGYM_PYODIDE_EXTRA_INDEX_URL": "https://pypi.org/simple"},
    ) as server:
        url = server.url
        manifest = json.loads(fetch(f"{url}{BASE}/manifest.json")[2])
        assert manifest["extra_index_url"] == "https://pypi.org/simple"
        worker_side = fetch(url + manifest["pyodide"]["module_url"])[1]["content-security-policy"]
        page = fetch(f"{url}/")[1]["content-security-policy"]
    assert "connect-src 'self' https://pypi.org https://files.pythonhosted.org;" in worker_side
    assert "connect-src 'self';" in page
    # Otherwise the policy is igym's, unchanged: WebAssembly may compile, scripts are igym's own.
    assert "script-src 'self' 'wasm-unsafe-eval';" in worker_side
