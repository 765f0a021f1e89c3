"""The engine's HTTP API; `engine.api.app.create_app` builds it."""
