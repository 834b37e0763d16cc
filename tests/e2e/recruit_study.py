"""Studies recruited on Prolific and MTurk, for `tests/e2e/test_recruitment_browser.py`.

- `prolific`: an intro page, then the end (outcome `completed`);
- `prolific_steps`: an intro page, a second page, then the end;
- `prolific_pair`: an intro page, then a two-player game whose waiting room gives up after 2 s
  (outcome `no_partner`), then the end;
- `mturk`: an intro page, then the end, submitted to MTurk's sandbox.
"""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, MTurk, Prolific, ScreeningScene, StaticScene
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
