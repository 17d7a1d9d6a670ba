"""Output helpers shared by the CLI commands: JSON mode, tables, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.errors import HeadwaterError, redact
from headwater.services.app import App

P = ParamSpec("P")
R = TypeVar("R")

out = Console(soft_wrap=True)
err = Console(stderr=True)

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=_default, ensure_ascii=False))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    t = Table(*columns, title=title, show_lines=False)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Render Headwater errors as one clear line on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except HeadwaterError as exc:
            err.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
            sys.exit(1)
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/red] {redact(str(exc))}", highlight=False)
            sys.exit(1)

    return wrapper


@contextmanager
def opened_app() -> Iterator[App]:
    app = App.open(settings_from_env())
    try:
        yield app
    finally:
        app.close()


def show_document(doc: dict[str, Any], as_json: bool) -> None:
    """Print `doc` as one JSON document, or as aligned ``key: value`` lines."""
    if as_json:
        print_json(doc)
        return
    width = max((len(k) for k in doc), default=0)
    for key, value in doc.items():
        out.print(f"{key:>{width}}: {value}", highlight=False)
