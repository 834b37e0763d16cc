"""Built-in plugins. Each module holds hookimpls and the classes they register.

They are registered by name (``igym.<module>``) through the same hooks as any other plugin, so they
can be blocked and replaced. Core code outside this package never imports from it.
"""
