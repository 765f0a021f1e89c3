"""`python -m plugins.e_invoice.simulator --port 8091` (the same as `hisbridge simulate e-invoice`)."""

from __future__ import annotations

from plugins.e_invoice.cli import simulate_e_invoice

if __name__ == "__main__":
    simulate_e_invoice()
