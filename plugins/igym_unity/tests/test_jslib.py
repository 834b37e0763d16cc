"""The shipped ``Igym.jslib`` passes the game's JSON text to the page as data, byte for byte.

It runs in node (``jslib_harness.mjs``) as Unity's build links it: against stubs of
``LibraryManager``/``mergeInto``/``autoAddDeps``/``UTF8ToString`` over a byte heap, in a context
where string code generation is off and ``eval``, ``Function`` and the timers are traps.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_unity.testing import JSLIB, TRICKY_LOG

HARNESS = Path(__file__).with_name("jslib_harness.mjs")
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is needed to run the jslib")

PAYLOADS = [
    ("episode_started", '{"level": "it\'s \\"quoted\\""}'),
    ("episode_ended", '{"path": "C:\\\\Users\\\\me", "score": 3}'),
    ("log", TRICKY_LOG),
    ("log", '"); globalThis.pwned = 1; ("'),
    ("log", "</script><script>window.pwned=2</script>"),
    ("log", '{"emoji": "🦄🎮👩‍👩‍👧", "cjk": "漢字", "rtl": "مرحبا"}'),
    ("episode_ended", ""),
]


def run_jslib(payloads: list[tuple[str, str]]) -> dict:
    request = {
        "jslib": JSLIB.read_text(encoding="utf-8"),
        "payloads": [
            {"event": event, "base64": base64.b64encode(text.encode("utf-8")).decode()}
            for event, text in payloads
        ],
    }
    done = subprocess.run(
        [NODE, str(HARNESS)], input=json.dumps(request), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_payloads_arrive_byte_identical_and_nothing_is_evaluated() -> None:
    out = run_jslib(PAYLOADS)
    assert out["evaluated"] == [] and out["pwned"] is None
    got = [(r["event"], base64.b64decode(r["base64"])) for r in out["received"]]
    assert got == [(event, text.encode("utf-8")) for event, text in PAYLOADS]
    assert {r["type"] for r in out["received"]} == {"string"}
    # Each C# entry point depends on the bridge function, as emscripten's autoAddDeps links it.
    assert out["deps"] == {
        f"Igym{name}__deps": ["$IgymBridge"] for name in ("EpisodeStarted", "EpisodeEnded", "Log")
    }


def test_the_jslib_has_no_way_to_run_text_as_code() -> None:
    source = JSLIB.read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    for construct in (
        r"\beval\b",
        r"\bFunction\s*\(",
        r"setTimeout",
        r"setInterval",
        r"innerHTML",
        r"\+\s*text",
    ):
        assert not re.search(construct, code), construct


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")), max_size=8
    )
)
def test_any_text_without_nul_arrives_unchanged(texts: list[str]) -> None:
    out = run_jslib([("log", text) for text in texts])
    assert [base64.b64decode(r["base64"]).decode("utf-8") for r in out["received"]] == texts
    assert out["evaluated"] == []
