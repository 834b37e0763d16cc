"""The ``pyodide_p2p`` runtime, server side: two people, each page steps the env, inputs go peer to peer.

A game's life (exactly two human seats; the first in ``prepared.human_seats`` is the authority)::

    loading ──both runtime_loaded──▶ p2p_start to both ──both p2p_route (or connect timeout)──▶
    countdown ──▶ playing ──both episode_done──▶ countdown ──▶ … ──▶ ended

The server is the authority on seeds and episode counts, exactly as in the ``pyodide`` runtime: it
sends the same ``pyodide_episode`` to both pages at once (the episode machine, statuses, the saving
hold and the game's end are the ones of ``game_base.BaseBrowserGame``; the runtime class's shared
part is ``runtime_base.BrowserRuntime``). It forwards WebRTC signalling
(``p2p_signal``) and, where no direct connection formed, the engines' packets (``p2p_relay``),
within bounds (:data:`MAX_SIGNALS_PER_PAGE`, :data:`RELAY_PACKETS_PER_S`). Both pages stream the
frames they confirmed; ``p2p_ingest.FrameBook`` stores each frame once and compares the other copy.

Partners: a page that reports ``partner_lost`` gets the scene's ``on_partner_left`` rule applied to
its partner when the server sees the partner gone too (no socket past ``reload_grace_s``, or a
connected page that sent no steps for ``partner_lost_s``); while the partner's socket is closed
(a reload) the page is told ``p2p_partner {state: "reloading"}``. A reloaded page that loads
again within ``reload_grace_s`` gets ``p2p_start`` with ``resume: true`` and the current episode;
its partner gets ``p2p_partner {state: "back", resume: true}`` and sends it its state.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.errors import ProtocolError
from igym_core.runtime import records
from igym_core.runtime.interface import (
    Continuation,
    GameHost,
    GameInfo,
    RuntimeMessage,
)
from igym_pyodide_p2p.game_base import BaseBrowserGame
from igym_pyodide_p2p.game_ingest import REJECTED_BATCHES, batch_field
from igym_pyodide_p2p.ingest import BatchProblem, decode_step_batch, step_rows
from igym_pyodide_p2p.messages import (
    BatchAck,
    EpisodeDone,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.p2p_check import ROLLBACK_METHODS, scene_problems
from igym_pyodide_p2p.p2p_ingest import (
    MAX_DISAGREEMENTS_PER_EPISODE,
    Disagreement,
    FrameBook,
    PageLedger,
    split_p2p,
)
from igym_pyodide_p2p.p2p_messages import (
    P2PEvent,
    P2PPartner,
    P2PRelay,
    P2PRoute,
    P2PSignal,
    P2PStart,
)
from igym_pyodide_p2p.p2p_options import P2POptions, check_ice_servers
from igym_pyodide_p2p.p2p_page import (
    MAX_EVENTS_PER_PAGE,
    MAX_LOADS_PER_PAGE,
    MAX_ROUTES_PER_PAGE,
    MAX_SIGNALS_PER_PAGE,
    RELAY_PACKETS_PER_S,
    Page,
    PageForwarding,
)
from igym_pyodide_p2p.p2p_relay_socket import RELAY_PATH
from igym_pyodide_p2p.runtime_base import BrowserRuntime

__all__ = [
    "MAX_EVENTS_PER_PAGE",
    "MAX_LOADS_PER_PAGE",
    "MAX_ROUTES_PER_PAGE",
    "MAX_SIGNALS_PER_PAGE",
    "RELAY_PACKETS_PER_S",
    "ROLLBACK_METHODS",
    "P2PGame",
    "P2PRuntime",
    "Page",
    "scene_problems",
]

log = structlog.get_logger(__name__)

_pack = msgspec.msgpack.Encoder().encode
#: After ``p2p_start``, the first episode waits for both pages' ``p2p_route`` at most the scene's
#: connect timeout plus this.
_ROUTE_GRACE_S = 3.0


def options_of(prepared: Any) -> P2POptions:
    """The scene's options (structured at start, see ``P2PRuntime.options_type``)."""
    return P2PRuntime.options_of(prepared)


class P2PRuntime(BrowserRuntime):
    """Two-person games stepped in both players' browsers, inputs exchanged peer to peer."""

    kind: ClassVar[str] = "pyodide_p2p"
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = (
        RuntimeLoaded,
        RuntimeLoadFailed,
        StepBatchMessage,
        EpisodeDone,
        P2PSignal,
        P2PRelay,
        P2PRoute,
        P2PEvent,
        RttEcho,
    )
    #: The page's side (W: ``static/page/p2p.js``), served under /plugins/pyodide/.
    client_module: ClassVar[str | None] = "/plugins/pyodide/p2p.js"
    options_type: ClassVar[type | None] = P2POptions
    scene_problems = staticmethod(scene_problems)

    @classmethod
    def scene_view(cls, scene: Any, prepared: Any) -> dict[str, Any] | None:
        """``{"game": spec}``: the pyodide runtime's game spec with both human seats and, for
        ``on_partner_left="bot"``, the partner policy each page plays for a partner who left."""
        try:
            from igym_pyodide_p2p.p2p_spec import p2p_game_spec
        except ImportError:
            return None
        return {"game": p2p_game_spec(prepared, options_of(prepared))}

    def __init__(self, host: GameHost) -> None:
        super().__init__(
            host,
            {
                "batches_stored": 0,
                "batches_resent": 0,
                "batches_rejected": 0,
                "frames_stored": 0,
                "frames_compared": 0,
                "disagreements": 0,
                "episodes": 0,
                "signals": 0,
                "relayed": 0,
                "relay_dropped": 0,
                "load_timeouts": 0,
            },
        )
        self.games: dict[str, P2PGame] = {}
        #: The workers' relay sockets of this server waiting for their key now (p2p_relay_socket,
        #: bounded by ``MAX_AWAITING_KEY``): the app's, never the process's.
        self.relay_sockets_awaiting_key = 0

    def new_game(
        self, info: GameInfo, prepared: Any, options: P2POptions, continues: Continuation | None
    ) -> P2PGame:
        return P2PGame(self, info, prepared, options, self.action_tests(prepared), continues=continues)

    def ice_servers(self, options: P2POptions) -> tuple[dict[str, Any], ...]:
        """``IGYM_P2P_ICE_SERVERS`` when set, else the scene's."""
        configured = getattr(self.host.settings, "p2p_ice_servers", None)
        if configured:
            return check_ice_servers(configured, "IGYM_P2P_ICE_SERVERS")
        return options.ice_servers


class P2PGame(PageForwarding, BaseBrowserGame):
    """One peer-to-peer game: the episodes the server issues, the two pages' streams, the relay."""

    log = log

    def __init__(
        self,
        runtime: P2PRuntime,
        info: GameInfo,
        prepared: Any,
        options: P2POptions,
        actions_ok: Mapping[str, Callable[[Any], bool]],
        *,
        continues: Continuation | None = None,
    ) -> None:
        by_agent = {s.agent: s.participant_id for s in info.seats if s.participant_id is not None}
        # Human seat → participant id, in the scene's human_seats order (the first is the authority).
        players = {seat: by_agent[seat] for seat in prepared.human_seats if seat in by_agent}
        super().__init__(runtime, info, prepared, options, players, continues=continues)
        self.actions_ok = actions_ok
        seats = list(self.players)
        self.pages: dict[str, Page] = {}
        rules = options.batch_rules()
        for index, seat in enumerate(seats):
            partner = seats[1 - index] if len(seats) == 2 else seat
            self.pages[self.players[seat]] = Page(
                seat=seat,
                partner_seat=partner,
                participant_id=self.players[seat],
                authority=index == 0,
                ledger=PageLedger(
                    actions_ok=actions_ok,
                    humans=seats,
                    fps=self.scene.fps,
                    max_steps=self.scene.max_steps,
                    options=rules,
                ),
            )
        self.book = FrameBook(seats)
        self.started_p2p = False
        self.episode_open = False
        self.last_step = 0
        self._episode_message: dict[str, Any] | None = None
        #: The end reason the last ``episode_done`` gave.
        self._end_reason = "truncated"

    # --- helpers -----------------------------------------------------------------------------
    def page(self, participant_id: str) -> Page:
        page = self.pages.get(participant_id)
        if page is None:  # the core routes only a game's players here
            raise ProtocolError("wrong_game", "you are not a player of this game")
        return page

    def partner_of(self, page: Page) -> Page:
        return next(p for p in self.pages.values() if p is not page) if len(self.pages) == 2 else page

    def _offer(self, participant_id: str, message: Mapping[str, Any]) -> bool:
        """Send now if the socket is free, else queue it; False if the player has no socket."""
        sink = self.host.frame_sink(participant_id)
        if sink is None:
            return False
        if not sink.offer(_pack(message)):
            self._send(participant_id, message)
        return True

    def _active(self) -> list[Page]:
        return [p for p in self.pages.values() if not p.left]

    # --- GameHandle --------------------------------------------------------------------------
    def player_connected(self, participant_id: str) -> None:
        page = self.pages.get(participant_id)
        if page is None or self.ended:
            return
        self.absent_since = None
        if page.absent_since is not None and not page.left:
            page.absent_since = None
            partner = self.partner_of(page)
            self._offer(partner.participant_id, P2PPartner(game_id=self.info.game_id, state="back").wire())

    # --- the base game's questions: two pages, a ledger each, the frame book ------------------
    def _seat_of(self, participant_id: str) -> str | None:
        page = self.pages.get(participant_id)
        return page.seat if page is not None else None

    def _status_note(self, participant_id: str, message: str) -> str:
        page = self.pages.get(participant_id)
        if page is not None and page.left and not self.ended:
            link = self.links.get(participant_id)
            if link is not None and link.slow_warned:  # the slow-connection rule took their seat
                return "Your connection to the study server was too slow: the game goes on without you."
            return "You were away too long: the game goes on without you."
        return message

    def _open_episode(self, start: float) -> None:
        self.last_step = 0
        self.episode_open = True
        for page in self._active():
            page.ledger.open_episode(self.plays, start)
            page.last_progress = start
        self.book.disagreements[self.plays] = 0

    def _close_episode(self) -> None:
        self.episode_open = False
        for page in self.pages.values():
            page.ledger.close_episode()

    def _send_episode(self, message: dict[str, Any]) -> None:
        # The same episode to both pages, together (each with its own next batch number); kept for
        # a page that reloads in it.
        self._episode_message = message
        for page in self._active():
            again = dict(message)
            again["next_batch"] = page.ledger.next_batch
            self._send(page.participant_id, again)

    def _episode_closed(self) -> None:
        self._record_disagreements(self.book.expire(time.monotonic(), episode=self.plays))
        extra = self.book.disagreements.pop(self.plays, 0) - MAX_DISAGREEMENTS_PER_EPISODE
        if extra > 0:
            self.host.record(
                records.P2P_DISAGREEMENTS,
                records.p2p_disagreement_row(
                    self._ids, episode=self.plays, step=None, field="more", agent=None, values={}, count=extra
                ),
            )

    def player_message(self, participant_id: str, message: Any) -> None:
        if self.ended:
            return
        page = self.page(participant_id)
        if isinstance(message, P2PRelay):
            self._relay(page, message)
        elif isinstance(message, StepBatchMessage):
            self._ingest(page, message.data)
        elif isinstance(message, P2PSignal):
            self._signal(page, message)
        elif isinstance(message, P2PEvent):
            self._event(page, message)
        elif isinstance(message, P2PRoute):
            self._route(page, message)
        elif isinstance(message, EpisodeDone):
            self._episode_done(page, message)
        elif isinstance(message, RuntimeLoaded):
            self._loaded(page, message)
        elif isinstance(message, RuntimeLoadFailed):
            self._load_failed(page, message)
        elif isinstance(message, RttEcho):
            self._rtt_echo(participant_id, message)
        else:
            raise ProtocolError(
                "unknown_type", f"{message.type!r} is not a message of the pyodide_p2p runtime"
            )

    # --- loading and the start -----------------------------------------------------------------
    # Loading differs from the pyodide game's on purpose (game_loading.LoadRules): two pages load, the
    # start waits for both and for their routes, the records name the page's seat, and a reload resumes
    # from the partner's state instead of applying on_reload.
    def _page_ids(self, page: Page) -> dict[str, Any]:
        """The game's ids with the page's participant and seat (the rows of one page's doings)."""
        return {**self._ids, "participant_id": page.participant_id, "seat": page.seat}

    def _loaded(self, page: Page, message: RuntimeLoaded) -> None:
        if page.loads >= MAX_LOADS_PER_PAGE:
            raise ProtocolError(
                "p2p_reload_limit",
                f"a page may load this game at most {MAX_LOADS_PER_PAGE} times (each reload resumes it)",
            )
        page.loads += 1
        reload = page.loaded
        page.loaded = True
        self.host.record(
            records.GAMES,
            records.runtime_loaded_row(
                self._page_ids(page),
                ms=round(message.ms, 1),
                stages={k: round(v, 1) for k, v in message.stages.items()},
                reload=reload,
            ),
        )
        log.info(
            "runtime_loaded", game_id=self.info.game_id, seat=page.seat, ms=round(message.ms), reload=reload
        )
        if page.left:
            return
        if not self.started_p2p:
            if all(p.loaded for p in self.pages.values()):
                self._start_p2p()
            return
        if reload:
            self._resume(page)

    def _start_message(self, page: Page, *, resume: bool) -> dict[str, Any]:
        options = self.options
        # A fresh relay key for this page (a reloaded page's old worker socket is retired).
        page.relay_key = secrets.token_urlsafe(24)
        self._close_worker_relays(page)
        return P2PStart(
            game_id=self.info.game_id,
            seat=page.seat,
            partner_seat=page.partner_seat,
            authority=page.authority,
            input_delay=options.input_delay,
            window=options.prediction_window,
            hash_every=options.hash_every_frames,
            connect_timeout_ms=round(options.connect_timeout_s * 1000),
            route=options.route,
            ice_servers=self.runtime.ice_servers(options),
            silent_notice_ms=options.silent_notice_ms,
            lost_after_ms=round(options.partner_lost_s * 1000),
            resume=resume,
            relay_url=f"{RELAY_PATH}/{self.info.game_id}",
            relay_key=page.relay_key,
            max_state_bytes=options.max_state_bytes,
        ).wire()

    def _start_p2p(self) -> None:
        self.started_p2p = True
        self._cancel_timer()
        for page in self.pages.values():
            self._send(page.participant_id, self._start_message(page, resume=False))
        log.info("p2p_started", game_id=self.info.game_id)
        # The first episode waits for both routes (the pages connect and measure their round trip).
        self._timer = asyncio.get_running_loop().call_later(
            self.options.connect_timeout_s + _ROUTE_GRACE_S, self._routes_timed_out
        )

    def _routes_timed_out(self) -> None:
        self._timer = None
        if not self.ended and self.plays == 0 and self.phase == "loading":
            self._countdown()

    def _resume(self, page: Page) -> None:
        """A page loaded again (a reload) in a game under way: it resumes from its partner's state."""
        page.reloads += 1
        page.absent_since = None
        partner = self.partner_of(page)
        self.host.record(
            records.GAMES,
            records.reloaded_row(
                self._page_ids(page), episode=self.plays, step=page.ledger.last_step, rule="resume"
            ),
        )
        log.info("p2p_page_reloaded", game_id=self.info.game_id, seat=page.seat, episode=self.plays)
        self._send(page.participant_id, self._start_message(page, resume=True))
        if self.episode_open and self._episode_message is not None:
            page.ledger.resume_at_next_batch()
            again = dict(self._episode_message)
            again["next_batch"] = page.ledger.next_batch
            again.pop("start_in_ms", None)
            self._send(page.participant_id, again)
        self._send(
            partner.participant_id, P2PPartner(game_id=self.info.game_id, state="back", resume=True).wire()
        )

    def _load_failed(self, page: Page, message: RuntimeLoadFailed) -> None:
        self.host.record(
            records.GAMES,
            records.runtime_load_failed_row(
                self._page_ids(page), stage=message.stage, message=message.message
            ),
        )
        log.info("runtime_load_failed", game_id=self.info.game_id, seat=page.seat, stage=message.stage)
        self._give_up("runtime_load_failed")

    def _load_timed_out(self) -> None:
        self._timer = None
        if self.ended or self.started_p2p:
            return
        self.runtime.counters["load_timeouts"] += 1
        self.host.record(
            records.GAMES,
            {
                **records.load_timeout_row(self._ids, load_timeout_s=self.options.load_timeout_s),
                "loaded": [p.seat for p in self.pages.values() if p.loaded],
            },
        )
        log.info(
            "runtime_load_timed_out", game_id=self.info.game_id, load_timeout_s=self.options.load_timeout_s
        )
        self._give_up("load_timeout")

    def _partner_lost(self, page: Page) -> None:
        """``page`` has heard nothing from its partner for ``partner_lost_s``. The rule applies only
        when the server sees the partner gone too (a page cannot push its partner out)."""
        partner = self.partner_of(page)
        if partner is page or partner.left or page.left:
            return
        now = time.monotonic()
        if partner.absent_since is not None or self.host.frame_sink(partner.participant_id) is None:
            if partner.absent_since is None:
                partner.absent_since = now
            self._offer(page.participant_id, P2PPartner(game_id=self.info.game_id, state="reloading").wire())
            return  # the grace period runs in check_presence
        if self.episode_open and now - partner.last_progress >= self.options.partner_lost_s:
            self._partner_left(partner)

    def _gone(self, participant_id: str) -> bool:
        page = self.pages.get(participant_id)
        return page is None or page.left

    def _slow_connection_ended(self, participant_id: str) -> None:
        """The scene's slow-connection rule: the partner-left rule for the player whose connection
        stayed slow (``on_partner_left``: the game ends, or their partner's page plays a bot, and they
        are told so: their page's steps are refused from now on)."""
        self._partner_left(self.page(participant_id))
        if not self.ended:
            self._send(participant_id, self.status_message(participant_id))

    def _partner_left(self, gone: Page) -> None:
        """The scene's ``on_partner_left`` rule for ``gone``'s player."""
        if gone.left or self.ended:
            return
        gone.left = True
        self._close_worker_relays(gone)
        outcome = self.scene.on_partner_left
        stay = self.partner_of(gone)
        self.book.partner_gone(gone.seat)
        gone.ledger.close_episode()
        log.info(
            "partner_left", game_id=self.info.game_id, participant_id=gone.participant_id, outcome=outcome
        )
        self.host.record(
            records.GAMES,
            records.partner_left_row(self._ids, left=gone.participant_id, seat=gone.seat, outcome=outcome),
        )
        self.host.player_left(self.info, gone.participant_id, outcome)
        if self.ended:
            return
        if outcome == "end" or stay.left:
            self._withdraw_unstarted_episode()
            if self.episode_open:
                self._end_episode("partner_left", then_continue=False)
            self._end_game("partner_left", self.scene.partner_left_message)
            return
        stay.ledger.allow_bot(gone.seat)
        self._offer(stay.participant_id, P2PPartner(game_id=self.info.game_id, state="left").wire())
        self._maybe_finish()

    # --- episodes ----------------------------------------------------------------------------
    # Apart from the pyodide game's on purpose: the episode ends when both pages (or the one left in the
    # game) said so, not at one page's word.
    def _episode_done(self, page: Page, message: EpisodeDone) -> None:
        if message.episode < self.plays or (message.episode == self.plays and not self.episode_open):
            return  # sent again after a reconnect
        if message.episode != self.plays or not self.episode_open:
            raise ProtocolError(
                "bad_batch",
                f"episode {message.episode} is not being played (episode {self.plays} is the last)",
            )
        page.done_episode = message.episode
        self._end_reason = message.end_reason
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        """The episode ends when every page still in the game sent ``episode_done``, or when one did
        with the episode's last frame stored and the other page's socket is closed (a reload: that
        page resumes in the next episode instead of holding its partner at the end of this one)."""
        if not self.episode_open:
            return
        active = self._active()
        done = [p for p in active if p.done_episode == self.plays]
        if not done:
            return
        over = any(p.ledger.episode_over for p in done)
        if all(p in done or (over and p.absent_since is not None) for p in active):
            self._finish_episode()

    def _finish_episode(self) -> None:
        over = any(p.ledger.episode_over for p in self.pages.values())
        self._end_episode(self._end_reason if over else "incomplete")

    # --- step records ------------------------------------------------------------------------
    def _ingest(self, page: Page, data: Mapping[str, Any]) -> None:
        now = time.monotonic()
        counters = self.runtime.counters
        ledger = page.ledger
        try:
            if page.left:
                raise BatchProblem(
                    "wrong_episode", "your seat is played by a computer now; no steps are taken"
                )
            checked, frames = split_p2p(data, self.actions_ok.get(page.partner_seat))
            batch = decode_step_batch(checked, ledger.options)
            accepted = ledger.accept(batch, now)
        except BatchProblem as problem:
            counters["batches_rejected"] += 1
            self._rejected(page, data, problem)
            raise ProtocolError(
                "bad_batch", f"batch {batch_field(data, 'batch')} refused: {problem.message}"
            ) from None
        page.last_progress = now
        self.last_progress = now
        if accepted.duplicate:
            counters["batches_resent"] += 1
        else:
            counters["batches_stored"] += 1
            self._store(page, batch.episode, accepted.steps, accepted.hashes, frames, now)
        self._ack(page, batch.batch)

    def _store(
        self,
        page: Page,
        episode: int,
        steps: Sequence[Any],
        hashes: Sequence[tuple[int, str]],
        frames: Sequence[Any],
        now: float,
    ) -> None:
        first, first_hashes, found = self.book.arrive(page.seat, episode, steps, hashes, now)
        counters = self.runtime.counters
        counters["frames_stored"] += len(first)
        self.ticks += len(first)
        self.links[page.participant_id].steps_received += len(steps)
        counters["frames_compared"] = self.book.counts["compared"]
        if first:
            returns = self.returns
            for step in first:
                for agent, reward in step.rewards.items():
                    returns[agent] = returns.get(agent, 0.0) + reward
                if step.step > self.last_step:
                    self.last_step = step.step
            self.host.record_many(
                records.STEPS,
                step_rows(
                    self._ids, episode, first, players=self.players, t_server_ms=round(time.time() * 1000, 1)
                ),
            )
        for step_number, state_hash in first_hashes:
            self.host.record(
                records.STATE_HASHES,
                records.state_hash_row(self._ids, episode=episode, step=step_number, state_hash=state_hash),
            )
        if steps:
            self.host.record_many(
                records.P2P_FRAMES,
                [
                    records.p2p_frame_row(
                        self._ids,
                        episode=episode,
                        step=step.step,
                        seat=page.seat,
                        participant_id=page.participant_id,
                        rollbacks=info.rollbacks if info is not None else None,
                        predicted=info.predicted if info is not None else None,
                    )
                    for step, info in zip(steps, _pad(frames, len(steps)), strict=True)
                ],
            )
        if found:
            self._record_disagreements(found)

    def _record_disagreements(self, found: Sequence[Disagreement]) -> None:
        limits = self.book.disagreements
        for item in found:
            count = limits.get(item.episode, 0)
            limits[item.episode] = count + 1
            if item.field != "unconfirmed":
                self.runtime.counters["disagreements"] += 1
            if count >= MAX_DISAGREEMENTS_PER_EPISODE:
                continue
            self.host.record(
                records.P2P_DISAGREEMENTS,
                records.p2p_disagreement_row(
                    self._ids,
                    episode=item.episode,
                    step=item.step,
                    field=item.field,
                    agent=item.agent,
                    values=item.values,
                ),
            )
        if found:
            log.warning(
                "p2p_records_disagreed",
                game_id=self.info.game_id,
                count=len(found),
                first_field=found[0].field,
                first_step=found[0].step,
            )

    def _ack(self, page: Page, number: int) -> None:
        ack = BatchAck(game_id=self.info.game_id, batch=number).wire()
        self._offer(page.participant_id, ack)

    def _rejected(self, page: Page, data: Mapping[str, Any], problem: BatchProblem) -> None:
        steps = data.get("steps") if isinstance(data, Mapping) else None
        self.host.record(
            REJECTED_BATCHES,
            records.rejected_batch_row(
                self._ids,
                participant_id=page.participant_id,
                batch=batch_field(data, "batch"),
                episode=batch_field(data, "episode"),
                first_step=batch_field(data, "first_step"),
                steps=len(steps) if isinstance(steps, list) else None,
                rule=problem.kind,
                problem=problem.message,
                expected_batch=page.ledger.next_batch,
                t_server_ms=round(time.time() * 1000, 1),
            ),
        )
        log.info("batch_rejected", game_id=self.info.game_id, seat=page.seat, rule=problem.kind)

    # --- presence ----------------------------------------------------------------------------
    # Apart from the pyodide game's on purpose: each page has its own absence (a reload tells the
    # partner, reload_grace_s applies on_partner_left), on top of the shared abandon and stall rules.
    def check_presence(self, now: float) -> None:
        """Once a second: partners away past ``reload_grace_s`` leave (the scene's rule), a game
        nobody is connected to is abandoned after ``abandon_after_s``, a game whose connected pages
        send no steps of an open episode for ``load_timeout_s`` stalls, and copies of frames that
        waited too long for the other page's are recorded ``unconfirmed``."""
        if self.ended:
            return
        self._record_disagreements(self.book.expire(now))
        connected = []
        for page in self.pages.values():
            if self.host.frame_sink(page.participant_id) is not None:
                page.absent_since = None
                connected.append(page)
            elif page.absent_since is None:
                page.absent_since = now
                if self.started_p2p and not page.left:
                    partner = self.partner_of(page)
                    self._offer(
                        partner.participant_id,
                        P2PPartner(game_id=self.info.game_id, state="reloading").wire(),
                    )
                    self._maybe_finish()
                    if self.ended:
                        return
        if not connected:
            if self.absent_since is None:
                self.absent_since = now
            elif now - self.absent_since >= self.scene.abandon_after_s:
                self._withdraw_unstarted_episode()
                if self.episode_open:
                    self._end_episode("abandoned", then_continue=False)
                self._end_game("abandoned", "Nobody was connected to this game for too long.")
            return
        self.absent_since = None
        if self.started_p2p:
            for page in list(self.pages.values()):
                if (
                    not page.left
                    and page.absent_since is not None
                    and now - page.absent_since >= self.options.reload_grace_s
                ):
                    self._partner_left(page)
                    if self.ended:
                        return
        if (
            self.episode_open
            and self.phase == "playing"
            and now - self.last_progress >= self.options.load_timeout_s
        ):
            self._stalled(now)

    # --- the end -----------------------------------------------------------------------------
    def _end_game(self, reason: str, message: str, *, exit: Any = None) -> None:
        super()._end_game(reason, message, exit=exit)
        self._close_worker_relays()

    def _summary_records(self) -> None:
        self.host.record(
            records.GAMES,
            {
                **self._ids,
                "event": "p2p_summary",
                "pages": {
                    page.seat: {
                        "participant_id": page.participant_id,
                        "route": page.route,
                        "signals": page.signals,
                        "relayed": page.relayed,
                        "relay_dropped": page.relay_dropped,
                        "worker_relayed": page.worker_relayed_out,
                        "events": page.events,
                        "events_dropped": page.events_dropped,
                        "reloads": page.reloads,
                        "left": page.left,
                    }
                    for page in self.pages.values()
                },
                "frames": self.book.counts["frames"],
                "compared": self.book.counts["compared"],
                "disagreements": self.book.counts["disagreements"],
                "unconfirmed": self.book.counts["unconfirmed"],
            },
        )


def _pad(frames: Sequence[Any], n: int) -> list[Any]:
    out = list(frames[:n])
    out.extend([None] * (n - len(out)))
    return out
