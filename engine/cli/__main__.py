"""`python -m engine.cli` runs the `hisbridge` command line."""

from engine.cli import main

main()
