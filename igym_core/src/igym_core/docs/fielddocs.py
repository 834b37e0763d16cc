"""What the source says about an attrs class's fields: attribute docstrings and ``Args:`` entries.

A field is documented by a string literal right after it (an attribute docstring), by its entry in
the ``Args:`` section of the class docstring, or by ``metadata={"doc": ...}``. Python keeps none of
the first two at run time, so they are read from the class's source with :mod:`ast`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import re
import textwrap

import attrs

__all__ = ["class_summary", "field_docs", "markdown"]


_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]*\.)?(\w+)`")


def markdown(text: str) -> str:
    """Docstring markup as Markdown: ``code`` becomes `code`, :class:`~a.b.Name` becomes `Name`."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _clean(text: str) -> str:
    return markdown(" ".join(inspect.cleandoc(text).split()))


@functools.cache
def _attribute_docstrings(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    body = node.body
    for current, following in itertools.pairwise(body):
        if (
            isinstance(current, ast.AnnAssign)
            and isinstance(current.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[current.target.id] = _clean(following.value.value)
    return docs


_ARG_LINE = re.compile(r"^(\w+)(?: \([^)]*\))?: (.*)$")


def _args_section(cls: type) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Args:`` section of the class docstring."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Attributes:"))
    except StopIteration:
        return {}
    out: dict[str, list[str]] = {}
    current: str | None = None
    indent: int | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        this_indent = len(line) - len(line.lstrip())
        if this_indent == 0:
            break
        if indent is None:
            indent = this_indent
        match = _ARG_LINE.match(line.strip())
        if this_indent == indent and match:
            current = match.group(1)
            out[current] = [match.group(2)]
        elif current is not None:
            out[current].append(line.strip())
    return {name: " ".join(parts) for name, parts in out.items()}


def field_docs(cls: type) -> dict[str, str]:
    """Field name → its documentation, for every field of the attrs class ``cls`` that has one
    (inherited fields take their documentation from the class that declares them)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        docs.update(_args_section(klass))
        docs.update(_attribute_docstrings(klass))
    for field in attrs.fields(cls):
        if "doc" in field.metadata:
            docs[field.name] = _clean(field.metadata["doc"])
    names = {field.name for field in attrs.fields(cls)}
    return {name: markdown(text) for name, text in docs.items() if name in names}


def class_summary(cls: type) -> str:
    """The class docstring up to its ``Args:`` section, as one paragraph per blank-line block."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    kept: list[str] = []
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Attributes:"):
            break
        kept.append(line)
    paragraphs = "\n".join(kept).strip().split("\n\n")
    out = []
    for paragraph in paragraphs:
        if re.match(r"\s*(?:- |\d+\. )", paragraph):  # a list: one line per item
            items = re.split(r"\n\s*(?=- |\d+\. )", paragraph.strip())
            out.append("\n".join(" ".join(item.split()) for item in items))
        elif paragraph.strip() == "::":
            continue
        else:
            out.append(" ".join(paragraph.split()))
    return markdown("\n\n".join(out))
