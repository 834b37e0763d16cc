"""The server's rules for step records from a browser: what is stored once, acknowledged again or refused."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium
import msgpack
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_core.errors import ProtocolError
from igym_core.protocol.messages import MessageDecoder
from igym_core.runtime.records import NOT_RECORDED, step_row
from igym_pyodide_p2p.ingest import (
    BatchProblem,
    GameLedger,
    StepData,
    decode_step_batch,
    step_batch_of_frame,
    step_rows,
)
from igym_pyodide_p2p.messages import StepBatchMessage
from igym_pyodide_p2p.options import PyodideOptions

OPTIONS = PyodideOptions()
SPACES = {"agent_right": gymnasium.spaces.Discrete(6), "agent_left": gymnasium.spaces.Discrete(6)}
HUMAN = "agent_right"
FPS = 30


def ledger(options: PyodideOptions = OPTIONS, max_steps: int | None = None) -> GameLedger:
    return GameLedger(
        actions_ok={name: space.contains for name, space in SPACES.items()},
        humans=[HUMAN],
        fps=FPS,
        max_steps=max_steps,
        options=options,
    )


def step(n: int, *, done: bool = False, action: int = 1, reward: float = 0.0) -> dict[str, Any]:
    return {
        "step": n,
        "t_ms": 1.7e12 + n * 33.3,
        "actions": {HUMAN: action, "agent_left": 2},
        "sources": {HUMAN: "human", "agent_left": "bot"},
        "keys": {HUMAN: ["ArrowUp"]},
        "rewards": {HUMAN: reward, "agent_left": -reward},
        "terminated": {HUMAN: done, "agent_left": done},
        "truncated": {HUMAN: False, "agent_left": False},
        "infos": None,
    }


def batch(
    number: int, first: int, count: int, *, episode: int = 1, done_at: int | None = None
) -> dict[str, Any]:
    steps = [step(n, done=n == done_at) for n in range(first, first + count)]
    hashes = [[n, f"h{n}"] for n in range(first, first + count) if n % 30 == 0]
    return {
        "type": "step_batch",
        "game_id": "g-1",
        "batch": number,
        "episode": episode,
        "first_step": first,
        "steps": steps,
        "hashes": hashes,
    }


def wire(data: dict[str, Any]) -> dict[str, Any]:
    """The message as the server decodes it from its msgpack frame."""
    return msgpack.unpackb(msgpack.packb(data), raw=False, strict_map_key=False)


def offer(game: GameLedger, data: dict[str, Any], now: float = 1000.0) -> Any:
    return game.accept(decode_step_batch(wire(data), OPTIONS), now)


def refused(game: GameLedger, data: dict[str, Any], now: float = 1000.0) -> BatchProblem:
    with pytest.raises(BatchProblem) as caught:
        offer(game, data, now)
    return caught.value


def test_an_honest_stream_is_stored_once_and_resends_are_acknowledged_without_writing() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    first = offer(game, batch(1, 1, 15))
    second = offer(game, batch(2, 16, 15))
    assert not first.duplicate and [s.step for s in first.steps] == list(range(1, 16))
    assert [s.step for s in second.steps] == list(range(16, 31))
    assert second.hashes == ((30, "h30"),)
    again = offer(game, batch(1, 1, 15))
    assert again.duplicate and again.steps == () and again.hashes == ()
    assert game.next_batch == 3 and game.last_step == 30


def test_a_replayed_batch_number_with_other_content_is_refused() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    offer(game, batch(1, 1, 10))
    tampered = batch(1, 1, 10)
    tampered["steps"][3]["rewards"][HUMAN] = 5.0
    problem = refused(game, tampered)
    assert problem.kind == "replayed" and "batch 1 was already stored" in problem.message


def test_stored_steps_under_a_new_batch_number_are_refused_as_a_replay() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    offer(game, batch(1, 1, 10))
    problem = refused(game, batch(2, 5, 10))
    assert problem.kind == "replayed" and "step 11" in problem.message


def test_out_of_order_batches_and_steps_are_refused_and_do_not_use_up_the_number() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    assert refused(game, batch(2, 1, 5)).kind == "out_of_order"
    assert refused(game, batch(1, 3, 5)).kind == "out_of_order"
    gap = batch(1, 1, 5)
    gap["steps"][2]["step"] = 9
    problem = refused(game, gap)
    assert problem.kind == "out_of_order" and "step 9 is at place 3" in problem.message
    assert offer(game, batch(1, 1, 5)).steps  # the number is still free


def test_steps_from_the_future_are_refused() -> None:
    game = ledger()
    game.open_episode(1, now=100.0)
    # One second in at 30 fps, with the 2 s tolerance: at most step 91.
    problem = refused(game, batch(1, 1, 120), now=101.0)
    assert problem.kind == "future_step" and "at most step 91" in problem.message
    assert offer(game, batch(1, 1, 91), now=101.0).steps


def test_an_episode_the_server_did_not_issue_is_refused() -> None:
    game = ledger()
    assert refused(game, batch(1, 1, 5)).kind == "wrong_episode"
    game.open_episode(2, now=0.0)
    problem = refused(game, batch(1, 1, 5, episode=3))
    assert problem.kind == "wrong_episode" and "episode 2 is being played" in problem.message
    game.close_episode()
    assert refused(game, batch(1, 1, 5, episode=2)).kind == "wrong_episode"


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        (lambda s: s["actions"].__setitem__(HUMAN, 9), "bad_action", "action 9 of 'agent_right'"),
        (lambda s: s["actions"].__setitem__(HUMAN, "up"), "bad_action", "not in its action space"),
        (lambda s: s["actions"].__setitem__("agent_x", 1), "bad_action", "'agent_x' is not an agent"),
        (lambda s: s["sources"].__setitem__("agent_left", "human"), "bad_value", "is a bot seat"),
        (lambda s: s["sources"].__setitem__("agent_left", "absent"), "bad_value", "is a bot seat"),
        (lambda s: s["sources"].__setitem__(HUMAN, "bot"), "bad_value", "is a human seat"),
        (lambda s: s["keys"].__setitem__("agent_left", ["a"]), "malformed", "only human seats"),
        (lambda s: s["rewards"].__setitem__(HUMAN, float("nan")), "bad_value", "the reward"),
        (lambda s: s["rewards"].__setitem__(HUMAN, "1"), "malformed", "rewards"),
        (lambda s: s["terminated"].__setitem__(HUMAN, 1), "malformed", "terminated"),
        (lambda s: s.__setitem__("infos", {HUMAN: {"x": "y" * 5000}}), "oversized", "info"),
        (lambda s: s.__setitem__("extra", 1), "malformed", "extra"),
        (lambda s: s.pop("actions"), "malformed", "actions"),
        (lambda s: s["keys"].__setitem__(HUMAN, ["k" * 40]), "malformed", "keys"),
    ],
)
def test_a_step_that_breaks_a_rule_refuses_its_batch(change: Any, kind: str, words: str) -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    bad = batch(1, 1, 5)
    change(bad["steps"][2])
    problem = refused(game, bad)
    assert problem.kind == kind and words in problem.message
    assert game.last_step == 0 and game.next_batch == 1


def test_oversized_batches_are_refused() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    problem = refused(game, batch(1, 1, OPTIONS.max_batch_steps + 1))
    assert problem.kind == "oversized" and f"at most {OPTIONS.max_batch_steps}" in problem.message
    small = PyodideOptions(max_batch_bytes=2048)
    with pytest.raises(BatchProblem) as caught:
        decode_step_batch(wire(batch(1, 1, 40)), small)
    assert caught.value.kind == "oversized" and "bytes" in caught.value.message


def test_nothing_follows_the_end_of_an_episode() -> None:
    game = ledger(max_steps=20)
    game.open_episode(1, now=0.0)
    assert refused(game, batch(1, 1, 10, done_at=5)).kind == "bad_value"
    assert offer(game, batch(1, 1, 5, done_at=5)).episode_over
    assert refused(game, batch(2, 6, 2)).message.startswith("episode 1 already ended")
    other = ledger(max_steps=20)
    other.open_episode(1, now=0.0)
    assert refused(other, batch(1, 1, 21)).message.endswith("max_steps is 20")
    assert offer(other, batch(1, 1, 20)).episode_over


def test_hashes_must_name_steps_of_the_episode() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    bad = batch(1, 1, 5)
    bad["hashes"] = [[6, "abc"]]
    assert refused(game, bad).kind == "bad_value"
    bad["hashes"] = [[-1, "abc"]]
    assert refused(game, bad).kind == "malformed"
    bad["hashes"] = [[0, "after reset"], [5, "x"]]  # the page hashes after the reset too
    assert offer(game, bad).hashes == ((0, "after reset"), (5, "x"))


def test_rows_have_the_server_runtimes_columns_and_the_page_clock() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    data = batch(1, 1, 2)
    data["steps"][0]["infos"] = {HUMAN: {"ball": {"x": 1}}}
    accepted = offer(game, data)
    ids = {"game_id": "g-1", "scene_id": "s", "instance": 0, "participant_ids": ["p1"]}
    rows = step_rows(ids, 1, accepted.steps, players={HUMAN: "p1"}, t_server_ms=5.0)
    assert len(rows) == 4
    assert rows[0] == {
        **ids,
        "episode": 1,
        "step": 1,
        "tick": None,
        "agent": HUMAN,
        "seat": "human",
        "participant_id": "p1",
        "action": 1,
        "action_source": "human",
        "keys_held": ["ArrowUp"],
        "reward": 0.0,
        "terminated": False,
        "truncated": False,
        "info": {"ball.x": 1},
        "t_server_ms": 5.0,
        "t_client_ms": data["steps"][0]["t_ms"],
    }
    assert rows[1]["seat"] == "bot" and rows[1]["keys_held"] is None and rows[1]["participant_id"] is None


# --- garbage: whatever arrives, the only outcome besides a valid batch is a BatchProblem -------------
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["type", "game_id", "batch", "episode", "first_step", "steps", "hashes", "x"]),
        _values,
        max_size=8,
    )
)
def test_garbage_is_refused_with_a_problem_never_an_exception(data: dict[str, Any]) -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    try:
        game.accept(decode_step_batch(data, OPTIONS), 1000.0)
    except BatchProblem as problem:
        assert problem.kind in {
            "malformed",
            "oversized",
            "replayed",
            "out_of_order",
            "wrong_episode",
            "bad_value",
        }


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mutated_honest_batch_is_refused_or_stored_whole(data: st.DataObject) -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    honest = batch(1, 1, 6)
    bad = copy.deepcopy(honest)
    target = data.draw(st.integers(0, 5))
    field = data.draw(
        st.sampled_from(["step", "t_ms", "actions", "sources", "keys", "rewards", "terminated"])
    )
    bad["steps"][target][field] = data.draw(_values)
    try:
        accepted = game.accept(decode_step_batch(wire(bad), OPTIONS), 1000.0)
    except BatchProblem:
        assert game.last_step == 0 and game.next_batch == 1
        assert offer(game, honest).steps  # refusing left the ledger as it was
    else:
        assert len(accepted.steps) == 6 and game.last_step == 6


# --- the whole stream: honest batches, re-sends, replays and reorderings in any order ---------------
@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    noise=st.lists(
        st.tuples(st.sampled_from(["resend", "tamper", "skip_ahead", "early"]), st.integers(0, 50))
    ),
)
def test_every_step_is_stored_exactly_once_whatever_else_arrives(
    sizes: list[int], noise: list[tuple[str, int]]
) -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    honest: list[dict[str, Any]] = []
    first = 1
    for number, size in enumerate(sizes, start=1):
        honest.append(batch(number, first, size))
        first += size
    stored: list[int] = []
    sent = 0
    noise_iter = iter(noise)
    while sent < len(honest):
        action = next(noise_iter, None)
        if action is None or action[0] == "early":
            accepted = offer(game, honest[sent], now=1000.0)
            stored.extend(s.step for s in accepted.steps)
            sent += 1
            continue
        kind, pick = action
        if kind == "resend" and sent:
            old = honest[pick % sent]
            assert offer(game, old, now=1000.0).duplicate
        elif kind == "tamper" and sent:
            old = copy.deepcopy(honest[pick % sent])
            old["first_step"] += 1
            with pytest.raises(BatchProblem):
                offer(game, old, now=1000.0)
        elif kind == "skip_ahead" and sent + 1 < len(honest):
            with pytest.raises(BatchProblem) as caught:
                offer(game, honest[sent + 1], now=1000.0)
            assert caught.value.kind == "out_of_order"
    assert stored == list(range(1, sum(sizes) + 1))


@settings(max_examples=100, deadline=None)
@given(
    episodes=st.lists(st.lists(st.integers(1, 30), min_size=1, max_size=5), min_size=1, max_size=4),
    late=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), max_size=6),
)
def test_across_episodes_each_step_is_stored_once_and_old_episodes_stay_closed(
    episodes: list[list[int]], late: list[tuple[int, int]]
) -> None:
    game = ledger()
    stored: set[tuple[int, int]] = set()
    sent: list[dict[str, Any]] = []
    number = 1
    for episode, sizes in enumerate(episodes, start=1):
        game.open_episode(episode, now=0.0)
        first = 1
        for size in sizes:
            data = batch(number, first, size, episode=episode)
            accepted = offer(game, data)
            for s in accepted.steps:
                assert (episode, s.step) not in stored
                stored.add((episode, s.step))
            sent.append(data)
            number += 1
            first += size
        game.close_episode()
        # Batches of this or an earlier episode arriving again: acknowledged, nothing stored.
        for pick, _ in late:
            assert offer(game, sent[pick % len(sent)]).duplicate
        # New steps for a closed episode are refused.
        with pytest.raises(BatchProblem) as caught:
            offer(game, batch(number, first, 1, episode=episode))
        assert caught.value.kind == "wrong_episode"
    assert stored == {(e, s) for e, sizes in enumerate(episodes, start=1) for s in range(1, sum(sizes) + 1)}


def test_memory_per_game_is_bounded_and_old_batch_numbers_are_refused() -> None:
    from igym_pyodide_p2p.ingest import KEPT_DIGESTS

    game = ledger()
    game.open_episode(1, now=0.0)
    count = KEPT_DIGESTS + 20
    for number in range(1, count + 1):
        offer(game, batch(number, number, 1), now=1e6)
    assert len(game.digests) == KEPT_DIGESTS
    assert offer(game, batch(count, count, 1), now=1e6).duplicate  # a recent re-send: acknowledged
    problem = refused(game, batch(3, 3, 1), now=1e6)
    assert problem.kind == "replayed" and "stored long ago" in problem.message


def test_a_huge_value_is_cut_short_in_the_problem() -> None:
    game = ledger()
    game.open_episode(1, now=0.0)
    bad = batch(1, 1, 2)
    bad["steps"][0]["actions"][HUMAN] = list(range(3000))
    problem = refused(game, bad)
    assert problem.kind == "bad_action" and len(problem.message) < 200


# --- the server's fast path: a frame decoded straight into the batch's struct ---------------------
_DECODER = MessageDecoder.for_runtimes([("pyodide", [StepBatchMessage])])


def _fast_then_general(game: GameLedger, frame: bytes, now: float) -> Any:
    """What the pyodide game does with a frame: the fast path, and the general one for a refusal."""
    message = _DECODER.decode(frame)
    assert isinstance(message, StepBatchMessage)
    if message.batch is not None:
        try:
            return game.accept(step_batch_of_frame(message.batch, frame, OPTIONS), now)
        except BatchProblem:
            pass
    return game.accept(decode_step_batch(message.data, OPTIONS), now)


def test_an_honest_frame_is_decoded_in_one_pass_and_stored_as_the_general_path_stores_it() -> None:
    frame = msgpack.packb(batch(1, 1, 6))
    message = _DECODER.decode(frame)
    assert isinstance(message, StepBatchMessage) and message.batch is not None and message.frame == frame
    assert message.data == batch(1, 1, 6)  # what a refusal is recorded from
    fast, general = ledger(), ledger()
    fast.open_episode(1, now=0.0)
    general.open_episode(1, now=0.0)
    one = _fast_then_general(fast, frame, 1000.0)
    other = offer(general, batch(1, 1, 6))
    assert one == other and fast.last_step == general.last_step == 6
    # A re-send of the same bytes is a duplicate; other content under the number is a replay.
    assert _fast_then_general(fast, frame, 1000.0).duplicate
    changed = batch(1, 1, 6)
    changed["steps"][2]["rewards"][HUMAN] = 1.0
    with pytest.raises(BatchProblem, match="already stored with other content"):
        _fast_then_general(fast, msgpack.packb(changed), 1000.0)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_frame_gets_the_same_decision_through_the_fast_path(data: st.DataObject) -> None:
    honest = batch(1, 1, 6)
    bad = copy.deepcopy(honest)
    if data.draw(st.booleans()):
        target = data.draw(st.integers(0, 5))
        field = data.draw(
            st.sampled_from(["step", "t_ms", "actions", "sources", "keys", "rewards", "terminated", "x"])
        )
        bad["steps"][target][field] = data.draw(_values)
    else:
        bad[data.draw(st.sampled_from(["batch", "episode", "first_step", "hashes", "game_id", "y"]))] = (
            data.draw(_values)
        )
    try:
        frame = msgpack.packb(bad)
    except (OverflowError, TypeError):
        return
    outcomes = []
    for decide in (_fast_then_general, lambda game, f, now: offer(game, bad, now)):
        game = ledger()
        game.open_episode(1, now=0.0)
        try:
            accepted = decide(game, frame, 1000.0)
        except BatchProblem as problem:
            outcomes.append(("refused", problem.kind, problem.message, game.next_batch, game.last_step))
        except ProtocolError as error:  # not even a step_batch for the decoder (a bad game_id)
            outcomes.append(("bad_message", str(error)))
        else:
            outcomes.append(("stored", accepted.steps, accepted.hashes, game.next_batch, game.last_step))
    if outcomes[0][0] == "bad_message":  # the server answers it before any game sees it
        with pytest.raises(ProtocolError):
            _DECODER.decode(frame)
        return
    assert outcomes[0] == outcomes[1]


# --- the rows: built in one expression for plain steps, as core's step_row builds them --------------
def _rows_by_step_row(
    ids: dict[str, Any], episode: int, steps: Any, players: dict[str, str], observations: bool
) -> list[dict[str, Any]]:
    """Every row through ``records.step_row`` (what ``step_rows`` must equal, key order included)."""
    return [
        step_row(
            ids,
            episode=episode,
            step=s.step,
            tick=None,
            agent=agent,
            participant_id=players.get(agent),
            action=action,
            action_source=s.sources[agent],
            keys_held=None if players.get(agent) is None else s.keys.get(agent, ()),
            reward=s.rewards.get(agent, 0.0),
            terminated=s.terminated.get(agent, False),
            truncated=s.truncated.get(agent, False),
            info=s.infos.get(agent) if s.infos else None,
            t_server_ms=5.0,
            t_client_ms=s.t_ms,
            observation=(s.observations or {}).get(agent) if observations else NOT_RECORDED,
        )
        for s in steps
        for agent, action in s.actions.items()
    ]


_actions = st.one_of(
    st.integers(0, 5),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=2),
)
_infos = st.one_of(
    st.none(),
    st.just({}),
    st.fixed_dictionaries({HUMAN: st.one_of(st.none(), st.just({}), st.just({"a": {"b": 1}}))}),
)


@settings(max_examples=200, deadline=None)
@given(
    actions=st.lists(st.tuples(_actions, _actions, _infos), min_size=1, max_size=5),
    observations=st.booleans(),
    players=st.sampled_from([{HUMAN: "p1"}, {}, {HUMAN: "p1", "agent_left": "p2"}]),
)
def test_step_rows_are_the_rows_core_builds(
    actions: list[tuple[Any, Any, Any]], observations: bool, players: dict[str, str]
) -> None:
    raw = []
    for n, (right, left, infos) in enumerate(actions, start=1):
        one = step(n, reward=0.5 * n)
        one["actions"] = {HUMAN: right, "agent_left": left}
        one["infos"] = infos
        one["observations"] = {HUMAN: [n, 1.5]} if n % 2 else None
        raw.append(one)
    steps = msgspec.convert(raw, list[StepData])
    ids = {"game_id": "g-1", "scene_id": "s", "instance": 0, "participant_ids": ["p1"]}
    rows = step_rows(ids, 1, steps, players=players, t_server_ms=5.0, observations=observations)
    expected = _rows_by_step_row(ids, 1, steps, players, observations)
    assert rows == expected
    assert [list(row) for row in rows] == [list(row) for row in expected]  # the same columns, in order
    assert msgspec.json.encode(rows) == msgspec.json.encode(expected)
