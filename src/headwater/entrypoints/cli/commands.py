"""The `headwater` command line: its commands, and `main` (run by the package's
`main` once they are loaded)."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from headwater.entrypoints.cli import EXIT_INTERRUPTED
from headwater.entrypoints.cli.output import WORKSPACE_META, option_name, print_error

_CLI = "headwater.entrypoints.cli"
#: Each command, as ``module:object``, imported when it runs (or when --help lists it):
#: `headwater connections list` loads neither the server (FastAPI, the API's schemas)
#: nor the demo, the accounts or any other group: 2.2 s of imports of a quiet machine.
COMMANDS = {
    "connections": f"{_CLI}.connections:connections",
    "model": f"{_CLI}.model:model",
    "warehouse": f"{_CLI}.warehouse:warehouse",
    "pipelines": f"{_CLI}.pipelines:pipelines",
    "runs": f"{_CLI}.runs:runs",
    "identity": f"{_CLI}.profiles:identity",
    "profiles": f"{_CLI}.profiles:profiles",
    "workspaces": f"{_CLI}.accounts:workspaces",
    "users": f"{_CLI}.accounts:users",
    "tokens": f"{_CLI}.accounts:tokens",
    "demo": f"{_CLI}.demo:demo",
    "sandbox": "headwater.sandbox.command:sandbox",
    "serve": "headwater.entrypoints.serve.command:serve",
    "worker": "headwater.entrypoints.serve.command:worker",
}
#: Commands of a group that live in modules of their own, added when it loads.
SUBCOMMANDS = {
    "pipelines": (
        f"{_CLI}.preview:preview",
        f"{_CLI}.running:run",
        f"{_CLI}.validate:validate",
    ),
}


def _load(spec: str) -> click.Command:
    module, name = spec.split(":")
    command = getattr(importlib.import_module(module), name)
    if not isinstance(command, click.Command):
        raise TypeError(f"{spec} is not a command")
    return command


class LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 (click's)
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = _load(COMMANDS[cmd_name])
            if isinstance(command, click.Group):
                for spec in SUBCOMMANDS.get(cmd_name, ()):
                    command.add_command(_load(spec))
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
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
