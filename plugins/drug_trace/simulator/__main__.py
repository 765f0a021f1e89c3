"""`python -m plugins.drug_trace.simulator --port 8093` (the same as `hisbridge simulate drug-trace`)."""

from __future__ import annotations

from plugins.drug_trace.simulator.cli import simulate_drug_trace

if __name__ == "__main__":
    simulate_drug_trace()
