"""A 码上放心 TOP gateway simulator: `RelationSimulator` served by `RelationServer`."""

from plugins.drug_trace.simulator.relations import RelationServer, RelationSimulator

__all__ = ["RelationServer", "RelationSimulator"]
