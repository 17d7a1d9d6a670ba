"""`python -m headwater` runs the CLI."""

from headwater.entrypoints.cli import main

main()
