"""Payload formats: parse, render and diff one content type."""
