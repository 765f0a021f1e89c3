"""The demo: a simulated upstream and the scenario `hisbridge demo` runs."""
