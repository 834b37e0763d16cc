"""Studies recruited on Prolific and MTurk, for `tests/e2e/test_recruitment_browser.py`.

- `prolific`: an intro page, then the end (outcome `completed`);
- `prolific_steps`: an intro page, a second page, then the end;
- `prolific_pair`: an intro page, then a two-player game whose waiting room gives up after 2 s
  (outcome `no_partner`), then the end;
- `mturk`: an intro page, then the end, submitted to MTurk's sandbox;
- `ways_prolific`, `ways_mturk`: one study per platform from which each of the five platform
  outcomes can be reached (for the parametrised way-back test): a screening (window at least 800
  pixels wide: screened out), a page, a short single-player game that ends the study of a player
  who leaves it for a second (timed out, when they come back), a two-player game whose waiting
  room gives up after 4 s (no partner) and which a partner's leaving ends (partner left), then the
  end (completed).
"""

from __future__ import annotations

from typing import Any

from igym_core import (
    EndScene,
    Experiment,
    GymScene,
    MTurk,
    Prolific,
    ScreeningScene,
    StaticScene,
)
from igym_core.builtin.scene_gym import WaitingRoom
from tests.e2e.multiplayer_study import HEIGHT, WIDTH, draw, make_env

CODES = {
    "completed": "C1DONE",
    "screened_out": "C2SCREEN",
    "no_partner": "C3NOPART",
    "partner_left": "C4LEFT",
    "timed_out": "C5TIME",
}
NO_PARTNER_MESSAGE = "Nobody else came to play. You will be paid for your time."

INTRO = StaticScene(scene_id="intro", title="Welcome", body="Press continue to go on.")
END = EndScene(scene_id="end", redirect_delay_ms=300)

prolific = Experiment(
    experiment_id="recruit_prolific", scenes=(INTRO, END), recruitment=Prolific(codes=CODES)
)

prolific_steps = Experiment(
    experiment_id="recruit_prolific_steps",
    scenes=(INTRO, StaticScene(scene_id="middle", title="Second page", body="Nearly there."), END),
    recruitment=Prolific(codes=CODES),
)

prolific_pair = Experiment(
    experiment_id="recruit_prolific_pair",
    recruitment=Prolific(codes=CODES),
    scenes=(
        INTRO,
        GymScene(
            scene_id="dots",
            env_factory=make_env,
            render_fn=draw,
            human_seats=("left", "right"),
            default_action=0,
            fps=10,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            waiting_room=WaitingRoom(timeout_s=2, on_timeout="message", message=NO_PARTNER_MESSAGE),
        ),
        END,
    ),
)

mturk = Experiment(
    experiment_id="recruit_mturk",
    scenes=(INTRO, END),
    recruitment=MTurk(preview_text="Preview: you will answer a few questions. Accept the HIT to start."),
)

screened = Experiment(
    experiment_id="recruit_screened",
    recruitment=Prolific(codes=CODES),
    scenes=(
        ScreeningScene(
            scene_id="check",
            browsers={"chrome": 100, "firefox": 100},
            min_window_width=800,
            min_window_height=500,
            max_rtt_ms=150,
        ),
        INTRO,
        EndScene(scene_id="end", redirect_delay_ms=1500),  # long enough to look at the reasons
    ),
)


def _stand_still(observation: Any) -> int:
    return 0


PARTNER_LEFT_MESSAGE = "Your partner has left the game."


def _ways_out(experiment_id: str, recruitment: Any) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        recruitment=recruitment,
        scenes=(
            ScreeningScene(scene_id="check", min_window_width=800),
            INTRO,
            GymScene(
                scene_id="solo",
                env_factory=make_env,
                render_fn=draw,
                human_seats=("left",),
                policies={"right": _stand_still},
                default_action=0,
                fps=10,
                max_steps=30,
                countdown_s=0,
                canvas_width=WIDTH,
                canvas_height=HEIGHT,
                abandon_after_s=1.0,
                on_abandon="end",
            ),
            GymScene(
                scene_id="pair",
                env_factory=make_env,
                render_fn=draw,
                human_seats=("left", "right"),
                default_action=0,
                fps=10,
                max_steps=60,  # 6 s: time for a partner to leave mid-game on a loaded machine
                countdown_s=0,
                canvas_width=WIDTH,
                canvas_height=HEIGHT,
                waiting_room=WaitingRoom(timeout_s=4, on_timeout="message", message=NO_PARTNER_MESSAGE),
                reconnect_grace_s=0.5,
                on_partner_left="end",
                partner_left_message=PARTNER_LEFT_MESSAGE,
            ),
            END,
        ),
    )


ways_prolific = _ways_out("recruit_ways_prolific", Prolific(codes=CODES))
ways_mturk = _ways_out("recruit_ways_mturk", MTurk(codes=CODES))
