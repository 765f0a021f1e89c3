"""Destination adapters and the contract they implement."""
