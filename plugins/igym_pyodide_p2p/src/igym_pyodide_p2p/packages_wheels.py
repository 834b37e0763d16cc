"""The wheels igym serves to the browser: reproducible ``py3-none-any`` wheels built from installed
files, a source tree, a study's file or a lean build."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from igym_pyodide_p2p.packages_lean import lean_builds
from igym_pyodide_p2p.packages_model import PackageError, ScenePackages

#: Where every wheel's files claim to be dated (a zip cannot say 1970): reproducible wheels.
_ZIP_DATE = (2020, 2, 2, 0, 0, 0)


@attrs.frozen(kw_only=True)
class Wheel:
    """A built wheel: its file name, bytes and SHA-256 (hex)."""

    project: str
    version: str
    filename: str
    data: bytes = attrs.field(repr=False)
    sha256: str


def _tree_files(folder: Path) -> Iterable[Path]:
    """The files of a package folder that go into its wheel: not bytecode, not hidden files or
    folders (``.env``, ``.git``): whatever is in a browser wheel, every participant can download."""
    for file in folder.rglob("*"):
        parts = file.relative_to(folder).parts
        if (
            file.is_file()
            and "__pycache__" not in parts
            and not any(part.startswith(".") for part in parts)
            and not file.name.endswith((".pyc", ".pyo"))
        ):
            yield file


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(project: str, version: str, files: Mapping[str, bytes], metadata_text: str) -> Wheel:
    """A ``py3-none-any`` wheel of ``files`` (archive name → bytes), reproducible byte for byte."""
    dist_name = re.sub(r"[-_.]+", "_", project)
    dist_version = version.replace("-", "_")
    info = f"{dist_name}-{dist_version}.dist-info"
    entries = dict(sorted(files.items()))
    entries[f"{info}/METADATA"] = metadata_text.encode()
    entries[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: igym-pyodide-p2p\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in entries.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    entries[f"{info}/RECORD"] = record.getvalue().encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            item = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            item.compress_type = zipfile.ZIP_DEFLATED
            item.external_attr = 0o644 << 16
            archive.writestr(item, data)
    blob = buffer.getvalue()
    return Wheel(
        project=project,
        version=version,
        filename=f"{dist_name}-{dist_version}-py3-none-any.whl",
        data=blob,
        sha256=hashlib.sha256(blob).hexdigest(),
    )


def _metadata(project: str, version: str, summary: str) -> str:
    return f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: {summary}\n"


def _installed_files(dist: metadata.Distribution) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in dist.files or ():
        name = str(path).replace(os.sep, "/")
        if name.startswith("..") or "/__pycache__/" in f"/{name}" or name.endswith((".pyc", ".pyo")):
            continue  # scripts outside site-packages, bytecode
        if ".dist-info/" in name or name.endswith(".pth"):
            continue
        located = Path(str(dist.locate_file(path)))
        if located.is_file():
            files[name] = located.read_bytes()
    return files


def _folder_files(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {str(f.relative_to(root.parent)).replace(os.sep, "/"): f.read_bytes() for f in _tree_files(root)}


def _without_requirements(text: str) -> str:
    """A distribution's METADATA without ``Requires-Dist``: the browser installs exactly the set igym
    worked out (``deps=False``), and a requirement that the browser does not load (numpy for the
    server-side wrappers of a pure-Python env) must not send micropip looking for it."""
    head, _sep, _body = text.partition("\n\n")
    kept = [line for line in head.splitlines() if not line.startswith(("Requires-Dist:", "Provides-Extra:"))]
    return "\n".join(kept) + "\n"


def build_wheels(plan: ScenePackages) -> list[Wheel]:
    """The wheels of every package of ``plan`` that igym serves (all but the extra index's)."""
    wheels: list[Wheel] = []
    for package in plan.packages:
        if package.source == "extra-index":
            continue
        if package.source == "lean":
            files = lean_builds()[package.project][1]
            text = _metadata(package.project, package.version, "igym's lean browser build")
        elif package.source == "study":
            files = _folder_files(Path(package.location))
            text = _metadata(package.project, package.version, f"the study's module {package.top_level[0]}")
        else:
            dist = metadata.distribution(package.project)
            if package.source == "installed":
                files = {
                    name: data
                    for name, data in _installed_files(dist).items()
                    if name.partition("/")[0].removesuffix(".py") in package.top_level
                }
            else:
                files = {}
                for top in package.top_level:
                    root = Path(package.location)
                    candidates = [root] if root.name in (top, f"{top}.py") else []
                    candidates += [root.parent / top, root.parent / f"{top}.py"]
                    for candidate in candidates:
                        if candidate.exists():
                            files.update(_folder_files(candidate))
                            break
            text = _without_requirements(dist.read_text("METADATA") or "") or _metadata(
                package.project, package.version, ""
            )
        if not files:
            raise PackageError(
                f"building the browser wheel of {package.project} {package.version} found no files "
                f"for {', '.join(package.top_level)} in {package.location}."
            )
        wheels.append(make_wheel(package.project, package.version, files, text))
    return wheels
