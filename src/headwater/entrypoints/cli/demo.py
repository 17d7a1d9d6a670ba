"""`headwater demo`: the whole path on the embedded defaults, against the sandbox."""

from __future__ import annotations

import sys

import click

from headwater.entrypoints.cli.output import handle_errors, opened_app, out, say, warn
from headwater.entrypoints.cli.progress import live_progress
from headwater.entrypoints.cli.runs import print_run
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.pipelines import runner, saving
from headwater.services.warehouse import safe_url


@click.command("demo")
@click.option("--customers", default=10_000, show_default=True)
@click.option("--seed", default=42, show_default=True)
@handle_errors
def demo(customers: int, seed: int) -> None:
    """Start the Stripe sandbox, connect it, and import its customers into the warehouse."""
    out.print(f"Starting the Stripe sandbox with {customers:,} customers…")
    with (
        start_sandbox(customers=customers, seed=seed, rate_limit=25) as sandbox,
        opened_app() as app,
    ):
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
        url = app.warehouse_url()
    if run.status != RunStatus.SUCCEEDED:
        sys.exit(1)
    say("\nCustomers landed in ", (safe_url(url), "bold"), ", table headwater.identities.")
    if url.startswith("duckdb:///"):
        path = url[len("duckdb:///") :]
        out.print("Try:")
        out.print(
            f"  {sys.executable} -c \"import duckdb; duckdb.connect('{path}', read_only=True).sql("
            "'select address_country, count(*) n from headwater.identities "
            f"where _pipeline_id = \\'{pipeline.id}\\' group by 1 order by n desc').show()\"",
            highlight=False,
        )
    out.print(f"Other views: headwater runs show {run.id} · headwater pipelines show {pipeline.id}")
