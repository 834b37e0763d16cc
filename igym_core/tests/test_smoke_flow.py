def test_participant_walks_the_example_study(participant, igym_app, tmp_path):
    p = participant(params={"PROLIFIC_PID": "abc"})
    assert p.kind == "start"
    assert p.submit({"agree": True})["scene"]["kind"] == "static"
