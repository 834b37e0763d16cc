"""Delta encoding of render objects: send the browser only what changed since the previous frame.

The server keeps one :class:`DeltaEncoder` per game. Each tick it feeds the renderer's objects to
:meth:`DeltaEncoder.update` and sends the :class:`FrameDelta` to every connection that received the
previous frame; a connection that is new or missed a frame gets :meth:`DeltaEncoder.keyframe`
instead (``key: true``). :func:`apply_delta` is what a client does with a frame, in Python: the
reference for the browser client and for tests.

A client applies a frame in this order: on a keyframe drop everything; remove ``rm``; add ``add``;
merge ``upd``. (An object whose ``object_type`` changed is in both ``rm`` and ``add``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import RenderObject, wire_changes, wire_defaults, wire_update

__all__ = ["DeltaEncoder", "FrameDelta", "apply_delta"]

_MISSING = object()
_BASE_TO_WIRE = RenderObject.to_wire


@attrs.frozen
class FrameDelta:
    """What changed between two frames.

    ``add``: full wire dicts of new objects; ``upd``: ``{"id": ..., <changed fields>}`` (a field
    back at its default is sent with its default value); ``rm``: ids of objects gone. The dicts are
    shared with the encoder's cache: treat them as read-only.
    """

    add: list[dict[str, Any]] = attrs.field(factory=list)
    upd: list[dict[str, Any]] = attrs.field(factory=list)
    rm: list[str] = attrs.field(factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.add or self.upd or self.rm)

    def as_message_fields(self) -> dict[str, Any]:
        """The ``add`` / ``upd`` / ``rm`` fields of a ``frame`` message, leaving out empty lists."""
        return _message_fields(self.add, self.upd, self.rm)


def _message_fields(add: list[dict[str, Any]], upd: list[dict[str, Any]], rm: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if add:
        fields["add"] = add
    if upd:
        fields["upd"] = upd
    if rm:
        fields["rm"] = rm
    return fields


class DeltaEncoder:
    """The wire state of one game's drawn objects, frame after frame.

    Keeps, per id, the last object emitted and its wire dict: the same object as in the previous
    frame costs an identity check, an equal or changed one a field-by-field comparison that
    converts only the changed fields (no whole wire conversion). Non-permanent objects missing
    from a frame are removed; permanent ones stay until emitted again (then updated if changed) or
    until :meth:`remove` / :meth:`clear`.
    """

    def __init__(self) -> None:
        # id -> (object, its wire dict)
        self._entries: dict[str, tuple[RenderObject, dict[str, Any]]] = {}
        # ids removed with remove() / clear() that the client still has: sent in the next rm
        self._pending_rm: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def update(self, objects: Iterable[RenderObject]) -> FrameDelta:
        """Apply the renderer's objects for a new frame; return what changed since the last update.

        Raises :class:`RenderError` if two objects share an id; the encoder is then left as it was
        (nothing of the failed frame is kept).
        """
        add, upd, rm = self._update(objects)
        return FrameDelta(add=add, upd=upd, rm=rm)

    def update_fields(self, objects: Iterable[RenderObject]) -> dict[str, Any]:
        """:meth:`update`, returning the frame message's fields directly (what
        ``update(objects).as_message_fields()`` gives, without the intermediate object; the server
        calls this for every game at every tick)."""
        return _message_fields(*self._update(objects))

    def _update(
        self, objects: Iterable[RenderObject]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        previous = self._entries
        entries: dict[str, tuple[RenderObject, dict[str, Any]]] = {}
        add: list[dict[str, Any]] = []
        upd: list[dict[str, Any]] = []
        rm: list[str] = list(self._pending_rm)

        for obj in objects:
            oid = obj.id
            if oid in entries:
                raise RenderError(
                    f"Two render objects in one frame have the id {oid!r}; ids must be unique per frame. "
                    "Give each object its own id (e.g. f'wall_{i}')."
                )
            old = previous.get(oid)
            if old is None:
                wire = obj.to_wire()
                add.append(wire)
                entries[oid] = (obj, wire)
                continue
            old_obj = old[0]
            if old_obj is obj:  # the same object again (scenery drawn once, returned every frame)
                entries[oid] = old
                continue
            cls = type(obj)
            if cls is type(old_obj) and cls.to_wire is _BASE_TO_WIRE:
                # Field by field (no equality check first: it would compare the fields twice when
                # the object moved, which is when it is not the same object).
                try:  # convert only the fields that changed
                    changed, wire = wire_update(old_obj, obj, old[1])
                except (ValueError, OverflowError, TypeError):
                    wire = obj.to_wire()  # raises the RenderError that names the field
                    changed = wire_changes(old_obj, obj, old[1], wire)
                if changed is not None:
                    upd.append(changed)
                entries[oid] = (obj, wire)
                continue
            if old_obj == obj:
                entries[oid] = old
                continue
            wire = obj.to_wire()
            if old_obj.object_type != obj.object_type:
                rm.append(oid)
                add.append(wire)
            else:  # a class with its own to_wire (or another class of the same type)
                changed = _changed_fields(old[1], wire)
                if changed is not None:
                    upd.append(changed)
            entries[oid] = (obj, wire)

        # Objects of the previous frame missing from this one. When nothing was added and the
        # frame has as many objects as the last, every previous id is in this frame: no scan.
        if add or len(entries) != len(previous):
            for oid, old in previous.items():
                if oid not in entries:
                    if old[0].permanent:
                        entries[oid] = old
                    else:
                        rm.append(oid)

        self._entries = entries
        self._pending_rm.clear()
        return add, upd, rm

    def remove(self, ids: str | Iterable[str]) -> None:
        """Remove objects (typically permanent ones) now; the next :meth:`update` sends their removal.

        Unknown ids are ignored.
        """
        if isinstance(ids, str):
            ids = (ids,)
        for oid in ids:
            if self._entries.pop(oid, None) is not None:
                self._pending_rm[oid] = None

    def clear(self) -> None:
        """Remove every object (e.g. between episodes); the next :meth:`update` sends the removals."""
        for oid in self._entries:
            self._pending_rm[oid] = None
        self._entries = {}

    def keyframe(self) -> list[dict[str, Any]]:
        """Full wire dicts of every current object: the ``add`` of a keyframe. Treat as read-only."""
        return [wire for _, wire in self._entries.values()]


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"id", <fields whose wire value differs>}``, or None when nothing on the wire changed."""
    changed: dict[str, Any] | None = None
    old_get = old.get
    for name, value in new.items():
        if old_get(name, _MISSING) != value:
            if changed is None:
                changed = {"id": new["id"]}
            changed[name] = value
    if not old.keys() <= new.keys():
        for name in old:
            if name not in new:  # back to its default, which to_wire leaves out
                if changed is None:
                    changed = {"id": new["id"]}
                changed[name] = wire_defaults(new["object_type"])[name]
    return changed


def apply_delta(
    state: dict[str, dict[str, Any]],
    *,
    key: bool = False,
    add: Sequence[Mapping[str, Any]] = (),
    upd: Sequence[Mapping[str, Any]] = (),
    rm: Sequence[str] = (),
) -> None:
    """Apply one frame to a client's objects, ``{id: wire dict}``, in place: the reference client.

    Order: a keyframe drops everything; then ``rm``, ``add``, ``upd``. Fields equal to their
    default are dropped, so the state always equals the encoder's :meth:`DeltaEncoder.keyframe`.
    Removing an unknown id is ignored; updating one raises ``KeyError`` (a protocol bug).
    """
    if key:
        state.clear()
    for oid in rm:
        state.pop(oid, None)
    for wire in add:
        state[wire["id"]] = _without_defaults(dict(wire))
    for change in upd:
        oid = change["id"]
        current = state.get(oid)
        if current is None:
            raise KeyError(f"frame updates object {oid!r}, which the client does not have")
        current.update(change)
        _without_defaults(current)


def _without_defaults(wire: dict[str, Any]) -> dict[str, Any]:
    defaults = wire_defaults(wire["object_type"])
    for name in [n for n, v in wire.items() if n in defaults and v == defaults[n]]:
        del wire[name]
    return wire
