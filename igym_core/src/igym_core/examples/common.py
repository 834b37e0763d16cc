"""What igym's example studies share, core's and the plugins' alike (mountain car, slime volleyball,
Overcooked): the study link's Prolific parameters, the consent's age check, the usual questions
after a game, the waiting room for a partner, and the end page with a code.

A study of your own may use them as they are, or copy and change them.
"""

from __future__ import annotations

from igym_core import ChoiceQuestion, EndScene, ScaleQuestion, TextQuestion, WaitingRoom

__all__ = [
    "AGREE_18",
    "COMMENTS",
    "END",
    "ENJOYMENT",
    "PARTNER_HUMAN",
    "PROLIFIC_PARAMS",
    "WAITING_FOR_PARTNER",
]

#: The study link's parameters (Prolific's), recorded with every record and usable in redirect URLs
#: (``Experiment(url_params=PROLIFIC_PARAMS)``). A link without one is let in with "MISSING" in its
#: place (and a ``url_params_missing`` record); ``UrlParam(name="PROLIFIC_PID", on_missing="refuse")``
#: would turn such a link away instead.
PROLIFIC_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")

#: The consent box's words (``StartScene(agree_label=AGREE_18)``).
AGREE_18 = "I am 18 or older and agree to take part."

#: After a game: how much the participant enjoyed it (1–7).
ENJOYMENT = ScaleQuestion(
    id="enjoyment", prompt="How much did you enjoy playing?", labels=((1, "Not at all"), (7, "Very much"))
)

#: After a game with another participant (or the bot that took their seat): person or computer?
PARTNER_HUMAN = ChoiceQuestion(
    id="partner_human",
    prompt="Do you think the other player was a person or a computer?",
    choices=(("person", "A person"), ("computer", "A computer"), ("unsure", "Not sure")),
    required=False,
)

#: The last, optional question: anything else.
COMMENTS = TextQuestion(
    id="comments", prompt="Anything else you noticed?", required=False, multiline=True, max_length=1000
)

#: Waiting for a second participant for up to three minutes; nobody comes: on to the next scene.
WAITING_FOR_PARTNER = WaitingRoom(
    timeout_s=180,
    message=(
        "Waiting for a second participant to join. The game starts as soon as they arrive; please "
        "keep this page open."
    ),
    on_timeout="continue",
)

#: The end page with a fresh completion code per participant.
END = EndScene(scene_id="end", completion_code="auto")
