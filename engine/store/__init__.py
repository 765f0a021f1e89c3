"""The message store: every message, every stage, every attempt, never overwritten."""
