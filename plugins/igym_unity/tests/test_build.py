"""Finding a WebGL build's four files, whatever Unity named them, and refusing broken builds."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_unity.build import UnityBuildError, discover_build
from igym_unity.testing import write_fake_build


@pytest.mark.parametrize(
    ("compression", "suffix", "encoding"),
    [("none", "", None), ("gzip", ".gz", "gzip"), ("brotli", ".br", "br"), ("unityweb", ".unityweb", None)],
)
def test_every_compression_is_found_with_the_headers_it_needs(
    tmp_path: Path, compression: str, suffix: str, encoding: str | None
) -> None:
    write_fake_build(tmp_path, compression=compression)  # type: ignore[arg-type]
    build = discover_build(tmp_path)  # the export folder: its Build/ is used
    assert build.directory == tmp_path / "Build"
    assert build.loader.name == "fake.loader.js" and build.loader.content_encoding is None
    assert (build.framework.name, build.code.name, build.data.name) == (
        f"fake.framework.js{suffix}",
        f"fake.wasm{suffix}",
        f"fake.data{suffix}",
    )
    assert [f.content_type for f in build.files()] == [
        "application/javascript",
        "application/javascript",
        "application/wasm",
        "application/octet-stream",
    ]
    assert {f.content_encoding for f in build.files()[1:]} == {encoding}
    assert all(f.headers()["Cache-Control"] == "public, max-age=31536000, immutable" for f in build.files())
    if compression == "brotli":
        assert any("HTTPS" in note for note in build.notes)
    if compression == "unityweb":
        assert any("gzip" in note and "without Content-Encoding" in note for note in build.notes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    product=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- .", min_size=1, max_size=20
    )
    .map(str.strip)
    .filter(lambda s: s and not s.startswith(".")),
    compression=st.sampled_from(["none", "gzip", "unityweb"]),
    hashed=st.booleans(),
)
def test_any_product_name_or_hashed_names_are_found(
    tmp_path_factory: pytest.TempPathFactory, product: str, compression: str, hashed: bool
) -> None:
    folder = write_fake_build(
        tmp_path_factory.mktemp("b"),
        compression=compression,  # type: ignore[arg-type]
        hashed_names=hashed,
        product=product,
    )
    build = discover_build(folder)
    assert build.loader.name == f"{product}.loader.js"
    for file in build.files()[1:]:
        assert file.hashed_name == hashed
        assert file.name.startswith(file.sha256[:0] + (file.name.split(".")[0] if hashed else product))
    assert len({f.path for f in build.files()}) == 4


def _problems(folder: Path) -> str:
    with pytest.raises(UnityBuildError) as caught:
        discover_build(folder)
    return str(caught.value)


def test_a_missing_folder_or_missing_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    assert "expected a folder holding a Unity WebGL build" in _problems(tmp_path / "nowhere")
    build = write_fake_build(tmp_path)
    (build / "fake.wasm").unlink()
    message = _problems(tmp_path)
    assert "no code file: expected a file named like <name>.wasm" in message
    assert "Export the WebGL build again" in message


def test_two_builds_in_one_folder_are_refused(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path)
    shutil.copy(build / "fake.data", build / "old.data")
    assert "more than one data file (fake.data, old.data)" in _problems(tmp_path)


def test_bytes_that_disagree_with_the_suffix_are_refused(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path)
    (build / "fake.wasm").write_bytes(gzip.compress((build / "fake.wasm").read_bytes()))
    assert "fake.wasm is gzip data without a .gz suffix" in _problems(tmp_path)
    (build / "fake.wasm").unlink()
    (build / "fake.wasm.gz").write_bytes(b"\x00asm\x01\x00\x00\x00")
    message = _problems(tmp_path)
    assert "fake.wasm.gz ends in .gz but is not gzip data" in message


def test_a_plain_data_file_without_unitys_header_is_refused(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path)
    (build / "fake.data").write_bytes(b"{}")
    assert "does not start with Unity's data header" in _problems(tmp_path)


def test_a_compressed_loader_and_mixed_compressions_are_refused(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path)
    loader = build / "fake.loader.js"
    (build / "fake.loader.js.gz").write_bytes(gzip.compress(loader.read_bytes()))
    loader.unlink()
    message = _problems(tmp_path)
    assert "the loader must be plain JavaScript" in message
    other = write_fake_build(tmp_path / "mixed")
    data = other / "fake.data"
    (other / "fake.data.gz").write_bytes(gzip.compress(data.read_bytes()))
    data.unlink()
    assert "use different compressions (gzip, none)" in _problems(tmp_path / "mixed")
