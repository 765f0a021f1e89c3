"""Bundled hisbridge plugins; each registers through the `hisbridge.plugins` entry points."""
