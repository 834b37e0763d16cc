"""A plugin defined by the tests: a new scene type with its own browser module.

It is loaded into a real `igym run` process with ``--plugin tests.e2e.colour_plugin.plugin``, exactly
as a researcher would load an uninstalled plugin.
"""
