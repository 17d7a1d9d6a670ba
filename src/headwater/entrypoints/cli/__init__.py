"""The `headwater` command line (`commands`).

`main` is the console script's entry point.  It loads the commands (FastAPI, DuckDB,
SQLAlchemy...: a second or more on a loaded machine) only when it runs, so that a
Ctrl-C pressed meanwhile ends the command as Ctrl-C does later ("Aborted!", exit 130)
rather than with a traceback of whatever import it interrupted.
"""

from __future__ import annotations

import sys

#: How a command interrupted with Ctrl-C exits (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def main() -> None:
    """Run the command line (`commands.main`)."""
    try:
        from headwater.entrypoints.cli.commands import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Aborted!\n")
        sys.exit(EXIT_INTERRUPTED)
    run()
