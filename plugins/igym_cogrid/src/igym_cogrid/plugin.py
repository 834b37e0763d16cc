"""Hook implementations of igym-cogrid: none are needed.

The game is made of plain callables that a ``GymScene`` names (``igym_cogrid.env:make_env``,
``igym_cogrid.render:draw``, ``igym_cogrid.bots:planner_policy``), so the plugin registers nothing.
The entry point makes igym list the package (``igym plugins``) and record its version in each
run's snapshot.
"""
