"""Data sinks and the long-format records igym writes."""
