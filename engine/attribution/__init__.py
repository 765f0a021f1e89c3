"""Fault attribution: which party is at fault for a failure, and which rule said so."""
