"""The message store: every message, every stage, every attempt, never overwritten."""

from engine.store.migrate import migrate
from engine.store.store import MessageStore

__all__ = ["MessageStore", "migrate"]
