"""Reference documentation generated from the code, so that it cannot drift from it.

- :mod:`igym_core.docs.schema`: the JSON Schema of experiment files (``igym schema``) and the
  reference page ``docs/experiment-schema.md``;
- :mod:`igym_core.docs.render_objects`: ``docs/render-objects.md``, every render object type and
  field.

``python -m igym_core.docs --help`` (``make docs``) writes them; tests compare the committed files
with what the generators write.
"""
