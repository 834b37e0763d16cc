"""A misspelt placeholder in the redirect (participants were sent to ...?cc=&pid=)."""

from _parts import START

from igym_core import EndScene, Experiment

experiment = Experiment(
    experiment_id="broken",
    url_params=("PROLIFIC_PID",),
    scenes=(
        START,
        EndScene(
            scene_id="end",
            completion_code="auto",
            redirect_url="https://app.prolific.com/submissions/complete?cc={completion_cod}&pid={PROLIFIC_PID}",
        ),
    ),
)
