"""Restored participants' URL parameters: every declared one ends up with a value, whatever its rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from igym_core.config.urls import UrlParam, fill_url_template, mark_url_params

NAMES = st.sampled_from(["PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "SOURCE"])
VALUES = st.sampled_from(["", " ", "abc", "5f3e", "x y"])


@given(
    declared=st.lists(
        st.builds(UrlParam, name=NAMES, on_missing=st.sampled_from(["mark", "refuse"])),
        unique_by=lambda p: p.name,
    ),
    params=st.dictionaries(NAMES | st.just("utm"), VALUES),
)
def test_every_declared_param_gets_a_value_and_only_missing_ones_are_marked(
    declared: list[UrlParam], params: dict[str, str]
) -> None:
    filled, marked = mark_url_params(declared, params)
    missing = [p.name for p in declared if not params.get(p.name, "").strip()]
    assert marked == missing
    for param in declared:
        assert filled[param.name] == (param.missing_value if param.name in missing else params[param.name])
    assert {k: v for k, v in filled.items() if k not in missing} == {
        k: v for k, v in params.items() if k not in missing
    }
    # So a redirect that names any declared parameter is filled, never with an empty value.
    template = "https://example.org/done?" + "&".join(f"{p.name}={{{p.name}}}" for p in declared)
    url = fill_url_template(template, {**filled, "participant_id": "p-1"})
    assert all(f"{p.name}=" in url and f"{p.name}=&" not in url + "&" for p in declared)
