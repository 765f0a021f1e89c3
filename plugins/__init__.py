"""Plugins bundled with hisbridge; each registers through the `hisbridge.plugins` entry points."""
