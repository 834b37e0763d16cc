"""The page messages' decoders accept exactly their shape and refuse anything else with a
``bad_message`` (never another exception)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core.errors import ProtocolError
from igym_unity.messages import UnityEvent, UnityLoaded, UnityLoadFailed

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(["type", "game_id", "event", "payload", "t", "ms", "stage", "message", "x"])


@pytest.mark.parametrize("message", [UnityEvent, UnityLoaded, UnityLoadFailed])
@given(data=st.dictionaries(keys | st.text(max_size=5), values, max_size=7))
def test_any_map_is_decoded_or_refused_as_a_bad_message(message: Any, data: dict[str, Any]) -> None:
    try:
        decoded = message.decode(data)
    except ProtocolError as exc:
        assert exc.code == "bad_message"
        return
    assert decoded.game_id == data["game_id"]


def test_a_well_formed_event_keeps_its_payload_as_text() -> None:
    text = '{"a": "\\"</script>🦄"}'
    event = UnityEvent.decode(
        {"type": "unity_event", "game_id": "g-1", "event": "log", "payload": text, "t": 5}
    )
    assert (event.event, event.payload, event.t) == ("log", text, 5.0)
