"""Frames: rendering after a step, deltas and keyframes, each player's HUD, and delivery to sockets."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.protocol.server_messages import frame_head, pack
from igym_core.runtime.records import plain

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.game import ServerGame
    from igym_core.builtin.runtime_server.presence import Player
    from igym_core.builtin.runtime_server.scheduler import TickStats

__all__ = ["Frames", "deliver"]

log = structlog.get_logger(__name__)


def deliver(stats: TickStats, sink: Any, data: bytes, player: Player) -> None:
    """Offer one frame to one player's socket; a frame the socket cannot take now is dropped."""
    if sink.offer(data):
        player.need_key = False
        size = len(data)
        stats.frames_sent += 1
        stats.bytes_sent += size
        player.sent += 1
        player.bytes_sent += size
    else:
        player.need_key = True
        player.dropped += 1
        stats.frames_dropped += 1


class Frames:
    """The frames part of :class:`~igym_core.builtin.runtime_server.game.ServerGame`."""

    def _init_frames(self: ServerGame, prepared: Any) -> None:
        from igym_core.rendering.delta import DeltaEncoder

        self.renderer = prepared.make_renderer()
        self.encoder = DeltaEncoder()
        self._rendered: Any = None  # tick_render's, for tick_send
        self._shared_delta: tuple[int, bytes] | None = None
        self.hud_text: str | None = None
        self._hud_key: float | None = None
        self._hud_default = ""
        self._hud_failed = False
        self.env_cost_s = 0.0
        self.env_cost_ticks = 0  # the first 100 steps' wall time, for env_slow

    def tick_render(self: ServerGame) -> None:
        """Render the env after the step (its cost counts as the env's, with the step's)."""
        stepped = self._stepped
        assert stepped is not None
        step_cost = stepped.step_s
        env_cpu = stepped.env_cpu_s
        if env_cpu is not None:
            cpu_started = time.thread_time()
        rendered_start = time.perf_counter()
        rendered = self.renderer.render(self.raw_env)
        rendered_end = time.perf_counter()
        cost = step_cost + (rendered_end - rendered_start)
        stats = self.runtime.scheduler.stats
        stats.env_s += cost
        stats.env_ticks += 1
        if env_cpu is not None:
            stats.env_cpu_s += env_cpu + time.thread_time() - cpu_started
            stats.env_cpu_samples += 1
        if self.env_cost_ticks < 100:
            self.env_cost_s += cost
            self.env_cost_ticks += 1
            if self.env_cost_ticks == 100:
                self._check_cost()
        self._rendered = rendered

    # --- frames ------------------------------------------------------------------------------
    def _player_frame(
        self: ServerGame, player: Player, base: dict[str, Any], rendered: Any, delta: Any, image: Any
    ) -> bytes | None:
        """The frame for one player of a multiplayer game (their HUD), or None if nothing is due."""
        changed = False
        if rendered is not None:
            hud = self._hud(player)
            changed = hud != player.hud_text
            player.hud_text = hud
        if player.need_key:
            message = {**base, "key": True, "hud": player.hud_text or "", "add": self.encoder.keyframe()}
        elif rendered is None:
            return None
        else:
            shared = self._shared_delta
            if not changed and shared is not None and shared[0] == self.tick_count:
                return shared[1]
            message = {**base, "key": False}
            if delta is not None:
                message.update(delta)
            if changed:
                message["hud"] = player.hud_text
        if image is not None:
            message["image"] = image
        data = pack(message)
        if not player.need_key and not changed:
            self._shared_delta = (self.tick_count, data)  # the same bytes for every unchanged HUD
        return data

    def _hud(self: ServerGame, human: Player | None) -> str:
        """The HUD text ``human`` sees (in a multiplayer game each player gets their own)."""
        hud = self.prepared.hud
        if hud is None:
            if human is None:
                return ""
            score = self.returns.get(self.agent_of_name[human.agent], 0.0)
            if self.multiplayer:
                return f"Your score {score:g}"  # (the page shows the episode itself)
            key = score
            if key != self._hud_key:  # the text changes only with the score; formatting it costs
                self._hud_key = key
                self._hud_default = f"Score {score:g}"  # (the page shows the episode itself)
            return self._hud_default
        from igym_core.builtin.scene_gym import HudView

        view = HudView(
            episode=self.episode,
            num_episodes=self.scene.num_episodes,
            step=self.step,
            max_steps=self.scene.max_steps,
            seat=human.agent if human else "",
            returns={self.agent_names[a]: v for a, v in self.returns.items()},
            rewards={self.agent_names.get(a, str(a)): plain(v) for a, v in self.last_rewards.items()},
            env=self.raw_env,
        )
        try:
            return str(hud(view))
        except Exception:
            if not self._hud_failed:  # once per game: it would fail again at every tick
                self._hud_failed = True
                log.exception("hud_failed", game_id=self.info.game_id, note="logged once per game")
            return ""

    def _send_frames(self: ServerGame, rendered: Any, t_ms: float | None = None) -> bool:
        """Render deltas (``rendered``) or only keyframes (``rendered=None``) to every player.

        Returns whether any player is connected. The frame for players who got the previous one
        and the keyframe for the others are each encoded once, and only if someone needs them.
        ``t_ms``: the frame's server time (the step's, when called after one); now if None.
        """
        scheduler = self.runtime.scheduler
        stats = scheduler.stats
        frame_sink = self.host.frame_sink
        base = frame_head(
            game_id=self.info.game_id,
            tick=self.tick_count,
            episode=self.episode,
            step=self.step,
            t=round(time.time() * 1000, 1) if t_ms is None else t_ms,
        )
        image = None
        delta = None
        hud_changed = False
        delta_bytes = None
        key_bytes = None
        connected = False
        multiplayer = self.multiplayer
        if rendered is not None:
            image = rendered.image_png
            if not multiplayer:
                hud = self._hud(next(iter(self.players.values()), None))
                hud_changed = hud != self.hud_text
                self.hud_text = hud
            if rendered.objects is not None:
                delta = self.encoder.update_fields(rendered.objects)
        for player in self.players.values():
            sink = frame_sink(player.participant_id)
            if sink is None:
                player.need_key = True
                if player.absent_since is None:
                    player.absent_since = time.monotonic()
                    self._presence_changed()
                continue
            if player.absent_since is not None:
                player.absent_since = None
                self._presence_changed()
            connected = True
            if sink.connection_id != player.connection_id:
                player.connection_id = sink.connection_id
                player.need_key = True
            if not player.ready:
                continue
            if multiplayer:  # each player's own HUD: frames with a HUD change are theirs alone
                data = self._player_frame(player, base, rendered, delta, image)
                if data is None:
                    continue
            elif player.need_key:
                if key_bytes is None:
                    message = {
                        **base,
                        "key": True,
                        "hud": self.hud_text or "",
                        "add": self.encoder.keyframe(),
                    }
                    if image is not None:
                        message["image"] = image
                    key_bytes = pack(message)
                data = key_bytes
            elif rendered is None:
                continue
            else:
                if delta_bytes is None:
                    message = {**base, "key": False}
                    if delta is not None:
                        message.update(delta)
                    if hud_changed:
                        message["hud"] = self.hud_text
                    if image is not None:
                        message["image"] = image
                    delta_bytes = pack(message)
                data = delta_bytes
            outgoing = scheduler.outgoing
            if outgoing is not None:  # inside a ticker: written after every game of the group ticked
                player.need_key = False
                outgoing.append((sink, data, player))
            else:
                deliver(stats, sink, data, player)
        return connected

    def _check_cost(self: ServerGame) -> None:
        """After 100 steps (once per game): warn if step + render take a large share of the tick."""
        mean = self.env_cost_s / self.env_cost_ticks
        if mean > 0.25 * self._period:
            log.warning(
                "env_slow",
                game_id=self.info.game_id,
                step_render_ms=round(mean * 1000, 2),
                period_ms=round(self._period * 1000, 1),
                advice="env.step + render take a large share of each tick; lower fps or speed up the env",
            )

    # --- episodes ----------------------------------------------------------------------------
