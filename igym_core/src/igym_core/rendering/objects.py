"""Render objects ("object contexts"): what an environment draws, as data the browser draws with Phaser.

A renderer returns a collection of these every frame. Each has a stable ``id``; the
:class:`~igym_core.rendering.delta.DeltaEncoder` compares a frame with the previous one and sends
only what changed (see docs/game-protocol.md, "Render objects").

They are frozen attrs classes, hashable and compared by value, and they are cheap to build: a game
makes one per object per frame. Validation is therefore limited to what is cheap and catches real
mistakes (empty ids, malformed colours, alpha outside 0..1, malformed points). Colours are checked
once per distinct string and remembered.

``permanent`` is a server-side flag: a permanent object stays on screen until it is emitted again
(then it is updated) or removed explicitly; a non-permanent one disappears from any frame that does
not contain it. It is never sent to the browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from igym_core.config.validators import FieldError
from igym_core.rendering.interface import RenderError

__all__ = [
    "OBJECT_TYPES",
    "Circle",
    "Line",
    "Polygon",
    "Rect",
    "RenderObject",
    "Sprite",
    "Text",
    "object_from_wire",
    "wire_defaults",
]

# --- field conversion and validation (run on every construction: keep them cheap) --------------

_COLOUR_FORM = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_COLOUR_CACHE: dict[str, str] = {}
_COLOUR_CACHE_LIMIT = 4096


def _colour_error(field: str, value: object, nullable: bool) -> FieldError:
    none_hint = ", or None for none" if nullable else ""
    return FieldError(
        field,
        f"must be a colour written '#rrggbb' (or '#rgb'), for example '#ff8800'{none_hint}; got {value!r}.",
    )


def _colour(field: str, *, nullable: bool) -> Callable[[Any], str | None]:
    """A converter that checks a colour and normalises it to lower-case ``#rrggbb``."""

    def convert(value: Any) -> str | None:
        if value is None:
            if nullable:
                return None
            raise _colour_error(field, value, nullable)
        try:
            return _COLOUR_CACHE[value]
        except KeyError:
            pass
        except TypeError:  # unhashable, so certainly not a colour string
            raise _colour_error(field, value, nullable) from None
        if not isinstance(value, str) or _COLOUR_FORM.fullmatch(value) is None:
            raise _colour_error(field, value, nullable)
        digits = value[1:].lower()
        if len(digits) == 3:
            digits = "".join(c + c for c in digits)
        normalised = "#" + digits
        if len(_COLOUR_CACHE) >= _COLOUR_CACHE_LIMIT:
            _COLOUR_CACHE.clear()  # a game that makes endless distinct colours must not grow memory
        _COLOUR_CACHE[value] = normalised
        return normalised

    return convert


def _to_points(value: Any) -> tuple[tuple[float, float], ...]:
    if hasattr(value, "tolist"):  # numpy arrays: much faster to convert as Python lists
        value = value.tolist()
    try:
        return tuple((float(x), float(y)) for x, y in value)
    except (TypeError, ValueError):
        raise FieldError(
            "points",
            f"must be a sequence of (x, y) pairs of numbers, for example [(0, 0), (10, 5)]; got {value!r}.",
        ) from None


def _check_id(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(instance) is RenderObject:
        raise TypeError(
            "RenderObject is the base class of render objects; draw with Rect, Circle, Line, Polygon, "
            "Text or Sprite."
        )
    if not isinstance(value, str) or not value:
        raise FieldError(
            "id",
            f"must be a non-empty string that names the object across frames, e.g. 'player'; got {value!r}.",
        )


def _check_alpha(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0 <= value <= 1:
        raise FieldError("alpha", f"must be between 0 (invisible) and 1 (opaque); got {value!r}.")


def _check_tween(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not value >= 0:
        raise FieldError(
            "tween_ms",
            f"must be None (one frame interval), 0 (jump) or a positive number of ms; got {value!r}.",
        )


def _check_owner(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise FieldError(
            "owner",
            "must be None or the agent id (seat) the object belongs to, a non-empty string such as "
            f"'left'; got {value!r}.",
        )


_ALIGNS = frozenset({"left", "center", "right"})


def _check_align(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in _ALIGNS:
        raise FieldError("align", f"must be 'left', 'center' or 'right'; got {value!r}.")


def _check_image(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise FieldError(
            "image", f"must be the key of an asset the scene preloads, e.g. 'car'; got {value!r}."
        )


# --- wire encoding -------------------------------------------------------------------------------
# Each field names how it goes on the wire (field metadata "wire"); None keeps it off the wire.


_EXACT_INT = 2.0**53  # beyond this, floats are not exact integers and msgpack ints may overflow


def _number(ndigits: int) -> Callable[[Any], int | float]:
    def encode(value: Any) -> int | float:
        rounded = round(float(value), ndigits)
        if -_EXACT_INT < rounded < _EXACT_INT:
            # Integral values as ints: smaller in msgpack and equal however the game computed them.
            as_int = int(rounded)
            return as_int if as_int == rounded else rounded
        if rounded - rounded != 0:  # nan or ±inf; to_wire reports it
            raise ValueError(f"not a finite number: {value!r}")
        return rounded

    return encode


_num2 = _number(2)
_num3 = _number(3)


def _optional(encode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def encode_optional(value: Any) -> Any:
        return None if value is None else encode(value)

    return encode_optional


def _as_is(value: Any) -> Any:
    return value


_POINTS_CACHE: dict[Any, list[list[int | float]]] = {}
_POINTS_CACHE_SIZE = 4096


def _points_wire(value: tuple[tuple[float, float], ...]) -> list[list[int | float]]:
    """The wire form of a polygon's or line's points, remembered per points tuple.

    A shape that moves (a slime, a car body) keeps its points and changes only ``x``/``y``; each of
    its frames would otherwise round every point again. The lists are shared: read-only.
    """
    try:
        cached = _POINTS_CACHE.get(value)
    except TypeError:  # unhashable points (lists): no caching
        return [[_num2(x), _num2(y)] for x, y in value]
    if cached is None:
        cached = [[_num2(x), _num2(y)] for x, y in value]
        if len(_POINTS_CACHE) >= _POINTS_CACHE_SIZE:
            _POINTS_CACHE.clear()
        _POINTS_CACHE[value] = cached
    return cached


def _wire_field(default: Any = attrs.NOTHING, *, wire: Callable[[Any], Any] | None, **kwargs: Any) -> Any:
    return attrs.field(default=default, metadata={"wire": wire}, **kwargs)


_REQUIRED = object()  # the wire default of a field without a default: never equal to a value


@attrs.frozen
class _FieldSpec:
    name: str
    default: Any
    encode: Callable[[Any], Any]
    wire_default: Any


_SPECS: dict[type, tuple[_FieldSpec, ...]] = {}
_WIRE_DEFAULTS: dict[type, dict[str, Any]] = {}


def _spec(cls: type[RenderObject]) -> tuple[_FieldSpec, ...]:
    specs = []
    for field in attrs.fields(cls):
        # Fields declared without wire metadata (e.g. by a plugin's own object type) go as they are.
        encode = field.metadata.get("wire", _as_is)
        if field.name == "id" or encode is None:
            continue
        if field.default is attrs.NOTHING:
            default, wire_default = _REQUIRED, _REQUIRED
        else:
            default, wire_default = field.default, encode(field.default)
        specs.append(_FieldSpec(field.name, default, encode, wire_default))
    result = tuple(specs)
    _SPECS[cls] = result
    _WIRE_DEFAULTS[cls] = {s.name: s.wire_default for s in result if s.wire_default is not _REQUIRED}
    return result


# --- the objects ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RenderObject:
    """What every render object has. Coordinates are canvas pixels, origin top left, y down.

    ``x``, ``y`` is the object's centre (Text: its anchor); ``angle`` is in degrees clockwise;
    ``depth`` orders drawing (higher on top); ``tween_ms`` is how long the browser takes to move the
    object to a new position or angle (None: one frame interval, 0: jump); ``owner`` names the seat
    whose avatar it is (that participant's page never interpolates it). A ``permanent`` object
    stays until emitted again or removed; the others vanish from any frame that omits them.
    """

    object_type: ClassVar[str]

    id: str = _wire_field(wire=_as_is, validator=_check_id)
    """Names the object across frames (non-empty); an object with the same id in the next frame is
    the same object, moved or changed."""
    x: float = _wire_field(0, wire=_num2)
    """Horizontal position in canvas pixels from the left edge: the object's centre (Text: its anchor)."""
    y: float = _wire_field(0, wire=_num2)
    """Vertical position in canvas pixels from the top edge (y grows downwards)."""
    angle: float = _wire_field(0, wire=_num2)
    """Rotation about ``x``, ``y`` in degrees, clockwise."""
    alpha: float = _wire_field(1, wire=_num3, validator=_check_alpha)
    """Opacity, from 0 (invisible) to 1 (opaque)."""
    depth: int = _wire_field(0, wire=int)
    """Drawing order: objects of higher depth are drawn on top of those of lower depth."""
    permanent: bool = _wire_field(False, wire=None)
    """Scenery: kept by the browser until emitted again (then updated); a non-permanent object
    vanishes from any frame that does not contain it. Server-side only, never sent."""
    tween_ms: int | None = _wire_field(None, wire=_optional(int), validator=_check_tween)
    """How long the browser takes to move the object to a new ``x``, ``y`` or ``angle``: None for
    one frame interval (smooth motion at the scene's fps), 0 to jump."""
    owner: str | None = _wire_field(None, wire=_as_is, validator=_check_owner)
    """The agent id (seat) whose avatar this object is part of, or None. The page of the participant
    playing that seat draws the object at its new place at once (no ``tween_ms``), so their own
    moves show without the interpolation delay; everyone else still sees it glide."""

    def to_wire(self) -> dict[str, Any]:
        """The object as sent to the browser: ``id``, ``object_type`` and every non-default field.

        Numbers are rounded (positions and sizes to 2 decimals, alpha to 3); integral values are
        sent as ints. ``permanent`` is never sent.
        """
        cls = type(self)
        fast = _FAST_TO_WIRE.get(cls) or _compile_to_wire(cls)
        try:
            return fast(self)
        except (ValueError, OverflowError, TypeError):
            return _to_wire_checked(self)  # raises the RenderError that names the field


def _to_wire_checked(obj: RenderObject) -> dict[str, Any]:
    """``to_wire`` field by field: what the compiled version does, and the errors it reports."""
    cls = type(obj)
    specs = _SPECS.get(cls) or _spec(cls)
    wire: dict[str, Any] = {"id": obj.id, "object_type": obj.object_type}
    for spec in specs:
        value = getattr(obj, spec.name)
        if value == spec.default:
            continue
        try:
            encoded = spec.encode(value)
        except (ValueError, OverflowError, TypeError):
            raise RenderError(
                f"Render object {obj.id!r} ({obj.object_type}) has {spec.name}={value!r}, which "
                "cannot be drawn: it must be a finite number. Check the computation that produced it."
            ) from None
        if encoded != spec.wire_default:
            wire[spec.name] = encoded
    return wire


# A server converts the objects that changed every frame of every game, so to_wire is compiled
# once per class into straight-line code (as attrs does for __init__ and __eq__): no loop over
# field specs, no getattr, and the rounding of _num2 / _num3 inlined. It must give exactly what
# _to_wire_checked gives; on any conversion error to_wire falls back to that, for the message.
_FAST_TO_WIRE: dict[type, Callable[[Any], dict[str, Any]]] = {}

_INLINE_ROUNDING = {_num2: 2, _num3: 3}


def _rounding_code(encode: str, ndigits: int) -> list[str]:
    """Lines that set ``v`` to ``_number(ndigits)(v)``, i.e. ``round(float(v), ndigits)``, as an int
    when integral, raising ValueError for nan / inf, like ``encode`` (the general version).

    ``round(x, 2)`` is correctly rounded through a decimal conversion and costs about 0.4 µs;
    ``round(x * 100)`` costs a fifth of that and gives the same integer n whenever x * 100 is not
    within 1e-6 of a half: below 1e8 the product is off by at most 1e-8, so it cannot cross the
    rounding boundary. Then ``n / 100`` is the double nearest to the decimal n/100, which is what
    ``round`` returns, and it is integral exactly when n is a multiple of 100. Values near a half,
    large values, nan and inf take the general path.
    """
    scale = 10**ndigits
    return [
        "if type(v) is int and -_EXACT < v < _EXACT:",
        "    pass",  # round(float(v), n) of an exact integer is that integer
        "else:",
        f"    y = _float(v) * {scale}.0",
        "    n = _round(y) if -1e8 < y < 1e8 else 0",
        "    if -0.499999 < y - n < 0.499999:",
        f"        v = n // {scale} if n % {scale} == 0 else n / {scale}",
        "    else:",
        f"        v = {encode}(v)",
    ]


def _compile_to_wire(cls: type[RenderObject]) -> Callable[[Any], dict[str, Any]]:
    specs = _SPECS.get(cls) or _spec(cls)
    namespace: dict[str, Any] = {"_round": round, "_float": float, "_EXACT": _EXACT_INT}
    lines = ["def to_wire(self):", "    wire = {'id': self.id, 'object_type': self.object_type}"]
    for index, spec in enumerate(specs):
        default, wire_default, encode = f"_d{index}", f"_w{index}", f"_e{index}"
        namespace[default], namespace[wire_default], namespace[encode] = (
            spec.default,
            spec.wire_default,
            spec.encode,
        )
        lines.append(f"    v = self.{spec.name}")
        indent = "    "
        if spec.default is not _REQUIRED:
            lines.append(f"    if not v == {default}:")
            indent = "        "
        ndigits = _INLINE_ROUNDING.get(spec.encode)
        if ndigits is not None:
            lines += [f"{indent}{line}" for line in _rounding_code(encode, ndigits)]
        elif spec.encode is not _as_is:
            lines.append(f"{indent}v = {encode}(v)")
        if spec.wire_default is _REQUIRED:
            lines.append(f"{indent}wire[{spec.name!r}] = v")
        else:
            lines += [f"{indent}if v != {wire_default}:", f"{indent}    wire[{spec.name!r}] = v"]
    lines.append("    return wire")
    exec(compile("\n".join(lines), f"<to_wire of {cls.__qualname__}>", "exec"), namespace)
    function = namespace["to_wire"]
    _FAST_TO_WIRE[cls] = function
    return function


# The delta encoder's question for an object that changed: which wire fields differ from the previous
# frame's? Compiled per class like to_wire: a field whose attribute is unchanged has an unchanged
# wire value (encoding is deterministic), so only the fields whose attributes changed are looked up
# in the two wire dicts (comparing the two wire dicts key by key cost more). The delta encoder uses
# it when an object's fast update (wire_update, below) raised and the whole object was converted.
_FAST_CHANGES: dict[type, Callable[[Any, Any, dict[str, Any], dict[str, Any]], dict[str, Any] | None]] = {}


def wire_changes(
    old: RenderObject, new: RenderObject, old_wire: dict[str, Any], new_wire: dict[str, Any]
) -> dict[str, Any] | None:
    """``{"id", <wire fields that differ>}`` between two objects of the same class that uses
    :meth:`RenderObject.to_wire`, given their wire dicts; None when nothing on the wire changed.

    A field missing from a wire dict has its wire default, so a field back at its default is sent
    with that value (as :func:`igym_core.rendering.delta._changed_fields` does for any wire dicts).
    """
    cls = type(new)
    changes = _FAST_CHANGES.get(cls) or _compile_changes(cls)
    return changes(old, new, old_wire, new_wire)


def _compile_changes(cls: type[RenderObject]) -> Callable[..., dict[str, Any] | None]:
    specs = _SPECS.get(cls) or _spec(cls)
    namespace: dict[str, Any] = {}
    lines = ["def changes(old, new, old_wire, new_wire):", "    changed = None"]
    for index, spec in enumerate(specs):
        name = spec.name
        if spec.wire_default is _REQUIRED:  # always on the wire
            old_value, new_value = f"old_wire[{name!r}]", f"new_wire[{name!r}]"
        else:
            namespace[f"_w{index}"] = spec.wire_default
            old_value = f"old_wire.get({name!r}, _w{index})"
            new_value = f"new_wire.get({name!r}, _w{index})"
        lines += [
            f"    a = old.{name}",
            f"    b = new.{name}",
            "    if a is not b and a != b:",
            f"        b = {new_value}",
            f"        if {old_value} != b:",
            "            if changed is None:",
            "                changed = {'id': new_wire['id']}",
            f"            changed[{name!r}] = b",
        ]
    lines.append("    return changed")
    exec(compile("\n".join(lines), f"<wire changes of {cls.__qualname__}>", "exec"), namespace)
    function = namespace["changes"]
    _FAST_CHANGES[cls] = function
    return function


# For an object that changed since the last frame, the delta encoder needs the changed fields'
# wire values and the object's new wire dict (for keyframes). Converting the whole object costs
# about three times as much as converting the few fields that moved (a car: x, y and angle of
# fifteen), so this compiled version starts from the previous wire dict and converts only the
# attributes that differ, field for field as to_wire does. It raises what the field's encoding
# raises (ValueError for nan, ...); the caller then takes the full path, which names the field.
_FAST_UPDATES: dict[
    type, Callable[[Any, Any, dict[str, Any]], tuple[dict[str, Any] | None, dict[str, Any]]]
] = {}


def wire_update(
    old: RenderObject, new: RenderObject, old_wire: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(changes, new_wire)`` for ``new`` after ``old`` (same class, base ``to_wire``).

    ``changes`` is what :func:`wire_changes` gives (None when nothing on the wire changed) and
    ``new_wire`` equals ``new.to_wire()`` (it is ``old_wire`` itself when nothing changed).
    """
    cls = type(new)
    update = _FAST_UPDATES.get(cls) or _compile_update(cls)
    return update(old, new, old_wire)


def _compile_update(cls: type[RenderObject]) -> Callable[..., Any]:
    specs = _SPECS.get(cls) or _spec(cls)
    namespace: dict[str, Any] = {"_round": round, "_float": float, "_EXACT": _EXACT_INT, "_MISSING": object()}
    lines = ["def update(old, new, old_wire):", "    changed = None", "    wire = None"]
    for index, spec in enumerate(specs):
        name = spec.name
        default, wire_default, encode = f"_d{index}", f"_w{index}", f"_e{index}"
        namespace[default], namespace[wire_default], namespace[encode] = (
            spec.default,
            spec.wire_default,
            spec.encode,
        )
        lines += [f"    v = new.{name}", f"    a = old.{name}", "    if a is not v and a != v:"]
        indent = "        "
        # v becomes the encoded value, or _MISSING when the field is left off the wire.
        if spec.default is not _REQUIRED:
            lines += [f"{indent}if v == {default}:", f"{indent}    v = _MISSING", f"{indent}else:"]
            inner = indent + "    "
        else:
            inner = indent
        ndigits = _INLINE_ROUNDING.get(spec.encode)
        if ndigits is not None:
            lines += [f"{inner}{line}" for line in _rounding_code(encode, ndigits)]
        elif spec.encode is not _as_is:
            lines.append(f"{inner}v = {encode}(v)")
        if spec.wire_default is not _REQUIRED:
            lines += [f"{inner}if v == {wire_default}:", f"{inner}    v = _MISSING"]
            previous = f"old_wire.get({name!r}, _MISSING)"
        else:
            previous = f"old_wire[{name!r}]"
        lines += [
            f"{indent}p = {previous}",
            f"{indent}if p != v:",
            f"{indent}    if wire is None:",
            f"{indent}        wire = dict(old_wire)",
            f"{indent}        changed = {{'id': old_wire['id']}}",
            f"{indent}    if v is _MISSING:",
            f"{indent}        del wire[{name!r}]",
            f"{indent}        changed[{name!r}] = {wire_default}",
            f"{indent}    else:",
            f"{indent}        wire[{name!r}] = v",
            f"{indent}        changed[{name!r}] = v",
        ]
    lines.append("    return changed, (old_wire if wire is None else wire)")
    exec(compile("\n".join(lines), f"<wire update of {cls.__qualname__}>", "exec"), namespace)
    function = namespace["update"]
    _FAST_UPDATES[cls] = function
    return function


_FILL = "#ffffff"


@attrs.frozen(kw_only=True)
class Rect(RenderObject):
    """A rectangle centred on ``x``, ``y``. ``fill`` / ``stroke`` None: no fill / no outline."""

    object_type: ClassVar[str] = "rect"

    width: float = _wire_field(wire=_num2)
    """Width in pixels."""
    height: float = _wire_field(wire=_num2)
    """Height in pixels."""
    fill: str | None = _wire_field(_FILL, wire=_as_is, converter=_colour("fill", nullable=True))
    """Fill colour, ``'#rrggbb'`` or ``'#rgb'``; None for no fill (an outline only)."""
    stroke: str | None = _wire_field(None, wire=_as_is, converter=_colour("stroke", nullable=True))
    """Outline colour; None for no outline."""
    line_width: float = _wire_field(1, wire=_num2)
    """Outline width in pixels (with ``stroke``)."""


@attrs.frozen(kw_only=True)
class Circle(RenderObject):
    """A circle centred on ``x``, ``y``."""

    object_type: ClassVar[str] = "circle"

    radius: float = _wire_field(wire=_num2)
    """Radius in pixels."""
    fill: str | None = _wire_field(_FILL, wire=_as_is, converter=_colour("fill", nullable=True))
    """Fill colour, ``'#rrggbb'`` or ``'#rgb'``; None for no fill (an outline only)."""
    stroke: str | None = _wire_field(None, wire=_as_is, converter=_colour("stroke", nullable=True))
    """Outline colour; None for no outline."""
    line_width: float = _wire_field(1, wire=_num2)
    """Outline width in pixels (with ``stroke``)."""


@attrs.frozen(kw_only=True)
class Line(RenderObject):
    """A polyline through ``points``, which are relative to ``x``, ``y``."""

    object_type: ClassVar[str] = "line"

    points: tuple[tuple[float, float], ...] = _wire_field(wire=_points_wire, converter=_to_points)
    """The ``(x, y)`` points the line passes through, in order, relative to ``x``, ``y`` (a list of
    pairs or an N×2 numpy array). The line is not closed: repeat the first point to close it."""
    color: str = _wire_field(_FILL, wire=_as_is, converter=_colour("color", nullable=False))
    """Line colour, ``'#rrggbb'`` or ``'#rgb'``."""
    line_width: float = _wire_field(2, wire=_num2)
    """Line width in pixels."""


@attrs.frozen(kw_only=True)
class Polygon(RenderObject):
    """A closed polygon through ``points``, which are relative to ``x``, ``y``."""

    object_type: ClassVar[str] = "polygon"

    points: tuple[tuple[float, float], ...] = _wire_field(wire=_points_wire, converter=_to_points)
    """The corners, in order, relative to ``x``, ``y`` (a list of pairs or an N×2 numpy array); the
    last is joined to the first."""
    fill: str | None = _wire_field(_FILL, wire=_as_is, converter=_colour("fill", nullable=True))
    """Fill colour, ``'#rrggbb'`` or ``'#rgb'``; None for no fill (an outline only)."""
    stroke: str | None = _wire_field(None, wire=_as_is, converter=_colour("stroke", nullable=True))
    """Outline colour; None for no outline."""
    line_width: float = _wire_field(1, wire=_num2)
    """Outline width in pixels (with ``stroke``)."""


@attrs.frozen(kw_only=True)
class Text(RenderObject):
    """Text anchored at ``x``, ``y``; ``origin_x`` / ``origin_y`` (0..1) pick the anchor point of the
    text's box (0, 0: top left; 0.5, 0.5: centre). ``text`` may hold newlines; non-strings are
    converted with ``str``."""

    object_type: ClassVar[str] = "text"

    text: str = _wire_field(wire=_as_is, converter=str)
    """What is written; ``\\n`` starts a new line. Other values are converted with ``str``."""
    font_size: float = _wire_field(16, wire=_num2)
    """Font size in pixels."""
    font_family: str = _wire_field("sans-serif", wire=_as_is)
    """A CSS font family available in the participant's browser (``"sans-serif"``, ``"monospace"``, ...)."""
    color: str = _wire_field(_FILL, wire=_as_is, converter=_colour("color", nullable=False))
    """Text colour, ``'#rrggbb'`` or ``'#rgb'``."""
    align: str = _wire_field("left", wire=_as_is, validator=_check_align)
    """How the lines of a text of several lines line up with each other: ``'left'``, ``'center'``
    or ``'right'`` (where the block stands is ``origin_x`` / ``origin_y``)."""
    origin_x: float = _wire_field(0, wire=_num3)
    """Which point of the text's box is at ``x``: 0 its left edge, 0.5 its centre, 1 its right edge."""
    origin_y: float = _wire_field(0, wire=_num3)
    """Which point of the text's box is at ``y``: 0 its top, 0.5 its middle, 1 its bottom."""


@attrs.frozen(kw_only=True)
class Sprite(RenderObject):
    """An image asset (or one ``frame`` of a spritesheet / atlas) centred on ``x``, ``y``.

    ``width`` / ``height`` None: the image's natural size. ``tint`` multiplies the image's colours.
    """

    object_type: ClassVar[str] = "sprite"

    image: str = _wire_field(wire=_as_is, validator=_check_image)
    """The ``key`` of an :class:`~igym_core.builtin.scene_gym.Asset` the scene preloads (a missing
    key draws a placeholder square and warns in the browser's console)."""
    frame: str | int | None = _wire_field(None, wire=_as_is)
    """For a spritesheet asset, the frame's index (0 is the top-left frame); for an atlas, the
    frame's name; None for the whole image."""
    width: float | None = _wire_field(None, wire=_optional(_num2))
    """Displayed width in pixels; with ``height`` None, the height scales to keep the proportions.
    None for the natural width."""
    height: float | None = _wire_field(None, wire=_optional(_num2))
    """Displayed height in pixels; with ``width`` None, the width scales to keep the proportions."""
    tint: str | None = _wire_field(None, wire=_as_is, converter=_colour("tint", nullable=True))
    """A colour multiplied into the image's colours (white leaves them as they are); None for none."""
    flip_x: bool = _wire_field(False, wire=bool)
    """Mirror the image left to right (a character facing the other way)."""


#: ``object_type`` → class, for every built-in render object.
OBJECT_TYPES: dict[str, type[RenderObject]] = {
    cls.object_type: cls for cls in (Rect, Circle, Line, Polygon, Text, Sprite)
}


def wire_defaults(object_type: str) -> Mapping[str, Any]:
    """The wire value of every field that has a default, for one ``object_type``.

    A field missing from an object's wire dict has this value; an ``upd`` that sends it means the
    field went back to its default.
    """
    cls = _object_class(object_type)
    if cls not in _WIRE_DEFAULTS:
        _spec(cls)
    return _WIRE_DEFAULTS[cls]


def _object_class(object_type: Any) -> type[RenderObject]:
    try:
        return OBJECT_TYPES[object_type]
    except (KeyError, TypeError):
        known = ", ".join(sorted(OBJECT_TYPES))
        raise RenderError(f"Unknown render object_type {object_type!r}; expected one of: {known}.") from None


def object_from_wire(wire: Mapping[str, Any]) -> RenderObject:
    """The render object a wire dict describes (the inverse of :meth:`RenderObject.to_wire`)."""
    fields = dict(wire)
    cls = _object_class(fields.pop("object_type", None))
    try:
        return cls(**fields)
    except TypeError as exc:
        raise RenderError(f"Cannot build a {cls.object_type} from {dict(wire)!r}: {exc}") from None
