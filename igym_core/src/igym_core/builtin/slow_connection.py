"""The slow-connection rule of a game scene (``GymScene(slow_connection=...)``), in every runtime.

Each of the runtime's round-trip probes (every ``rtt_interval_s``) that comes back slower than
``max_rtt_ms``, or is still unanswered that long when the next goes out, keeps a player's connection
"slow"; one that comes back in time makes it good again (``igym_core.runtime.connection.Link.judge``).
A player whose socket has closed is left to the reconnect rules.
Slow for ``warn_after_s``: the player is warned (the game's notice line) and a ``games`` row
``slow_connection_warned`` is recorded. Still slow ``end_after_s`` later: the scene's partner-left
rule applies to them (``on_partner_left``: ``end`` ends the game for everyone, ``bot`` gives their
seat to the partner policy) in a multiplayer game (a game it ends gives everyone the outcome
``partner_left``), and a single-player game ends with the outcome ``slow_connection`` (reported to
a recruitment platform as ``timed_out``); a ``slow_connection_ended`` row is recorded. The browser
runtimes apply it the same way: a ``pyodide`` game ends (``slow_connection``), and a ``pyodide_p2p``
game applies its partner-left rule to the slow player.
"""

from __future__ import annotations

import attrs

from igym_core.config.validators import positive

__all__ = ["SlowConnection"]


@attrs.frozen(kw_only=True)
class SlowConnection:
    """When a player's round-trip time stays over ``max_rtt_ms``: warn, then end (see the module)."""

    max_rtt_ms: float = attrs.field(default=300.0, validator=positive)
    warn_after_s: float = attrs.field(default=10.0, validator=positive)
    """How long the connection must stay slow before the player is warned."""
    end_after_s: float = attrs.field(default=10.0, validator=positive)
    """How long after the warning, still slow, the rule applies."""
    warning: str = (
        "Your connection to the study server is slow, so the game lags. Close other tabs or "
        "downloads; if it stays slow, the game will end."
    )
    end_message: str = "The game ended because your connection to the study server was too slow."
    """What a player of a single-player game reads when the rule ends it."""
