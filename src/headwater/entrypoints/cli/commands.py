"""The `headwater` command line: its commands, and `main` (run by the package's
`main` once they are loaded)."""

from __future__ import annotations

import logging
import os
import sys

import click

from headwater.entrypoints.cli import EXIT_INTERRUPTED
from headwater.entrypoints.cli.accounts import tokens, users, workspaces
from headwater.entrypoints.cli.connections import connections
from headwater.entrypoints.cli.demo import demo
from headwater.entrypoints.cli.model import model
from headwater.entrypoints.cli.output import WORKSPACE_META, option_name, print_error
from headwater.entrypoints.cli.pipelines import pipelines
from headwater.entrypoints.cli.preview import preview as preview_command
from headwater.entrypoints.cli.profiles import identity, profiles
from headwater.entrypoints.cli.running import run as run_command
from headwater.entrypoints.cli.runs import runs
from headwater.entrypoints.cli.validate import validate as validate_command
from headwater.entrypoints.cli.warehouse import warehouse
from headwater.entrypoints.serve.command import serve, worker
from headwater.sandbox.command import sandbox


@click.group()
@click.version_option(package_name="headwater")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens, on stderr.")
@click.option(
    "--workspace",
    "workspace_id",
    metavar="ID",
    default=None,
    help="Act on workspace ID (`headwater workspaces list`) instead of the default one.",
)
@click.pass_context
def cli(context: click.Context, verbose: bool, workspace_id: str | None) -> None:
    """Headwater: Stripe customers, filtered and mapped, landed in your own warehouse."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    context.meta[WORKSPACE_META] = workspace_id


COMMANDS = (
    connections,
    model,
    warehouse,
    pipelines,
    runs,
    identity,
    profiles,
    workspaces,
    users,
    tokens,
    demo,
    sandbox,
    serve,
    worker,
)
pipelines.add_command(preview_command)
pipelines.add_command(run_command)
pipelines.add_command(validate_command)
for command in COMMANDS:
    cli.add_command(command)


def _field(error: click.ClickException) -> str | None:
    """The option or argument a usage error is about (``--requests-per-second``)."""
    param = getattr(error, "param", None)
    if isinstance(param, click.Option) and param.opts:
        return option_name(param)
    return param.human_readable_name if isinstance(param, click.Parameter) else None


def main() -> None:
    """Run the command line.  With ``--json``, a usage error (a bad or missing option)
    is an error document too, like any other failure (`output.print_error`), exit 2.
    Ctrl-C ends any command with "Aborted!" and exit 130, as shells report it (click
    exits 1, the code of a failed command); `pipelines run` and `runs show --follow`
    handle it themselves first.  Started with stdin closed (``<&-``), a command reads
    it as an empty one: no answer to a question, no key or password on it."""
    as_json = "--json" in sys.argv[1:]
    if sys.stdin is None:  # Python's stdin when fd 0 was closed: every read would fail
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (the process's)
    try:
        code = cli.main(standalone_mode=False)
    except click.ClickException as exc:
        if as_json:
            kind = "usage" if isinstance(exc, click.UsageError) else "bad_request"
            print_error(kind, exc.format_message(), _field(exc), as_json=True)
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # Ctrl-C, or end of input at a prompt
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_INTERRUPTED if isinstance(exc.__context__, KeyboardInterrupt) else 1)
    except KeyboardInterrupt:  # between click's handling and here
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
