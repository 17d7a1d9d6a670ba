"""`headwater demo`: the whole path on the embedded defaults, against the sandbox, ending
with the console served on the demo data."""

from __future__ import annotations

import secrets
import sys

import click

from headwater.entrypoints.cli.output import handle_errors, opened_app, out, say, warn
from headwater.entrypoints.cli.progress import live_progress
from headwater.entrypoints.cli.runs import print_run
from headwater.entrypoints.serve.command import serve
from headwater.kernel.entities import Pipeline, Run, RunStatus
from headwater.kernel.errors import Conflict, TerminalError
from headwater.sandbox.testing import RunningSandbox, SandboxDidNotStart, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.pipelines import runner, saving
from headwater.services.warehouse import safe_url

DEMO_EMAIL = "demo@example.com"
#: The sandbox generates every customer in memory before it answers: past this a demo
#: would take gigabytes and minutes just to start.
MOST_CUSTOMERS = 1_000_000


@click.command("demo")
@click.option(
    "--customers",
    default=10_000,
    show_default=True,
    type=click.IntRange(0, MOST_CUSTOMERS),
    help=f"Customers the sandbox generates, at most {MOST_CUSTOMERS:,} "
    "(it holds them all in memory, about 1 KB each).",
)
@click.option("--seed", default=42, show_default=True)
@click.option(
    "--console/--no-console",
    default=True,
    show_default=True,
    help="Then serve the console (and the API) on the demo data until Ctrl-C.",
)
@click.option("--port", default=8484, show_default=True, type=click.IntRange(0, 65535))
@handle_errors
def demo(customers: int, seed: int, console: bool, port: int) -> None:
    """Start the Stripe sandbox, connect it, import its customers into the warehouse, then
    serve the console on that data with a demo sign-in (the sandbox stays up meanwhile)."""
    out.print(f"Starting the Stripe sandbox with {customers:,} customers…")
    try:
        started = start_sandbox(customers=customers, seed=seed, rate_limit=25)
    except SandboxDidNotStart as exc:
        raise TerminalError(f"the Stripe sandbox did not start: {exc.reason}") from None
    with started as sandbox, opened_app() as app:
        pipeline, run = _import(app, sandbox)
        if run.status != RunStatus.SUCCEEDED:
            sys.exit(1)
        _show_warehouse(app.warehouse_url(), pipeline, run)
        if not console:
            return
        email, password = demo_user(app)
        say("\nThe console: ", (f"http://127.0.0.1:{port}/", "bold"))
        say("Sign in with ", (email, "bold"), " and the password ", (password, "bold"))
        out.print("(Ctrl-C stops the console and the sandbox.)")
        click.get_current_context().invoke(serve, host="127.0.0.1", port=port, workers=2)


def _import(app: App, sandbox: RunningSandbox) -> tuple[Pipeline, Run]:
    out.print(f"  sandbox at {sandbox.url} (Stripe test-mode limit: 25 requests/s)")
    conn = connections.add_stripe(
        app, "Stripe sandbox (demo)", sandbox.secret_key, sandbox.url, 20.0
    )
    out.print(f"Connected {conn.id} with key {conn.api_key_masked} (verified with Stripe)")
    saved = saving.save_new(
        app, conn.id, "Demo: all customers", description="Created by `headwater demo`"
    )
    pipeline = saved.pipeline
    out.print(f"Created pipeline {pipeline.id} with the suggested mapping; running it…")
    for warning in saved.warnings:
        warn(warning)
    with live_progress(sys.stderr.isatty()) as progress:
        run = runner.run_pipeline(app, pipeline.id, on_progress=progress)
    print_run(run)
    return pipeline, run


def _show_warehouse(url: str, pipeline: Pipeline, run: Run) -> None:
    say("\nCustomers landed in ", (safe_url(url), "bold"), ", table headwater.identities.")
    if url.startswith("duckdb:///"):
        path = url[len("duckdb:///") :]
        out.print("Try (while the console is not running a pipeline):")
        out.print(
            f"  {sys.executable} -c \"import duckdb; duckdb.connect('{path}', read_only=True).sql("
            "'select address_country, count(*) n from headwater.identities "
            f"where _pipeline_id = \\'{pipeline.id}\\' group by 1 order by n desc').show()\"",
            highlight=False,
        )
    out.print(f"Other views: headwater runs show {run.id} · headwater pipelines show {pipeline.id}")


def demo_user(app: App) -> tuple[str, str]:
    """The demo's sign-in: the demo user (created by the first demo) with a new random
    password each time, printed once."""
    password = secrets.token_urlsafe(12)
    try:
        users.add_user(app, DEMO_EMAIL, password)
    except Conflict:
        users.set_password(app, DEMO_EMAIL, password)
    return DEMO_EMAIL, password
