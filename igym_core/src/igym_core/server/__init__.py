"""The Litestar app: participant page, WebSocket, health, static files."""
