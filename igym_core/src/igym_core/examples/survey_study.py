"""The example survey study: consent, instructions, surveys of every question type, a code.

Serve it with ``igym run igym_core.examples.survey_study:experiment``.
"""

from pathlib import Path

from igym_core import (
    ChoiceQuestion,
    EndScene,
    Experiment,
    OptionBox,
    OptionBoxes,
    RandomizeOrder,
    RepeatScene,
    ScaleQuestion,
    StartScene,
    StaticScene,
    SurveyScene,
    TextQuestion,
)

consent = StartScene(
    scene_id="consent",
    title="Welcome",
    # Relative paths are resolved against the experiment file's directory; this example is also
    # re-exported from elsewhere, so it names its file absolutely.
    body_file=str(Path(__file__).with_name("survey_study_consent.md")),
)

instructions = StaticScene(
    scene_id="instructions",
    title="How this study works",
    body="""
You will answer a few short questionnaires about games and how you like to play them.

- There are no right or wrong answers.
- Questions marked with **\\*** need an answer before you can continue.
- If you reload the page, your answers so far are kept.

It takes about three minutes.
""",
    min_duration_ms=1500,
)

about_you = SurveyScene(
    scene_id="about_you",
    title="About you",
    questions=(
        TextQuestion(id="nickname", prompt="What should we call you?", max_length=30),
        ChoiceQuestion(
            id="age_group",
            prompt="How old are you?",
            choices=("18–24", "25–34", "35–44", "45–54", "55 or older"),
        ),
        ChoiceQuestion(
            id="devices",
            prompt="Which devices do you play games on? Choose all that apply.",
            choices=(
                ("pc", "Computer"),
                ("console", "Games console"),
                ("phone", "Phone or tablet"),
                ("none", "I don't play games"),
            ),
            multiple=True,
        ),
    ),
)

game_taste = SurveyScene(
    scene_id="game_taste",
    title="Your taste in games",
    intro="Think of the games you played in the last month.",
    questions=(
        ScaleQuestion(
            id="enjoy_competition",
            prompt="I enjoy playing against other people.",
            min=1,
            max=7,
            labels=((1, "Strongly disagree"), (4, "Neutral"), (7, "Strongly agree")),
        ),
        ScaleQuestion(
            id="hours_per_week",
            prompt="About how many hours a week do you play?",
            min=0,
            max=40,
            step=1,
            style="slider",
            labels=((0, "None"), (40, "40 or more")),
        ),
        OptionBoxes(
            id="partner",
            prompt="Who would you rather play with?",
            options=(
                OptionBox("friend", "A friend", "Someone you know and can talk to."),
                OptionBox("stranger", "A stranger", "Someone new, matched online."),
                OptionBox("ai", "An AI partner", "A computer player that adapts to you."),
            ),
        ),
    ),
)

teamwork = SurveyScene(
    scene_id="teamwork",
    title="Playing in a team",
    questions=(
        ScaleQuestion(
            id="trust",
            prompt="I trust teammates I have never met.",
            min=1,
            max=5,
            labels=((1, "Not at all"), (5, "Completely")),
        ),
        TextQuestion(
            id="good_teammate",
            prompt="What makes a good teammate?",
            multiline=True,
            min_length=10,
            max_length=500,
            required=False,
            placeholder="A sentence or two",
        ),
    ),
)

mood = SurveyScene(
    scene_id="mood",
    title="Right now",
    questions=(
        ScaleQuestion(
            id="energy",
            prompt="How energetic do you feel right now?",
            min=1,
            max=5,
            labels=((1, "Very tired"), (5, "Full of energy")),
        ),
    ),
)

experiment = Experiment(
    experiment_id="demo_survey",
    title="Games and play: a short survey",
    # The study link's parameters (Prolific's); recorded with every record and usable in redirect
    # URLs. A link without one is let in with "MISSING" in its place (and a url_params_missing
    # record); UrlParam(name="PROLIFIC_PID", on_missing="refuse") would turn such a link away instead.
    url_params=("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    seed=2026,
    scenes=(
        consent,
        instructions,
        about_you,
        # Half see game_taste first, half teamwork first; the order is recorded per participant.
        RandomizeOrder(scenes=(game_taste, teamwork)),
        # Asked twice: each answer is stored with its own instance index (0 and 1).
        RepeatScene(scene=mood, times=2),
        EndScene(
            scene_id="done",
            body="Thank you for taking part! Your completion code is below.",
            # "auto": a fresh code per participant, for checking codes yourself. On Prolific, which
            # accepts only the codes set in the study, give that code and send people back with:
            # completion_code="C1A2B3C4",
            # redirect_url="https://app.prolific.com/submissions/complete?cc={completion_code}",
            # ({PROLIFIC_PID}, {STUDY_ID}, {SESSION_ID} and {participant_id} may be used too.)
            completion_code="auto",
        ),
    ),
)
