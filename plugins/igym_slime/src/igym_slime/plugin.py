"""Hook implementations of igym-slime: none are needed.

The game is made of plain callables that a ``GymScene`` names (``igym_slime.env:make_env``,
``igym_slime.render:draw``, ``igym_slime.bots:scripted_policy``) and the trained bot is a model
file for igym-onnx's ``onnx`` policy kind, so the plugin registers nothing. The entry point makes
igym list the package (``igym plugins``) and record its version in each run's snapshot.
"""
