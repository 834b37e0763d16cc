"""The participant WebSocket protocol: typed messages, msgpack frames (see docs/protocol.md)."""
