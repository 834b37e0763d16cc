"""Scene configuration base classes and the stager that sequences scenes per participant."""
