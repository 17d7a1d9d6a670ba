"""Output helpers shared by the CLI commands: JSON mode, text, tables, errors.

The one rule for text output: **nothing printed is ever read as markup.**  Every string
that reaches `out` or `err` (a pipeline name, a customer's email, a Stripe or exception
message, a table cell) is shown as the characters it holds: no rich markup (``[red]``),
no emoji codes (``:smile:``), no highlighting, and control characters (an ESC that would
start a terminal escape sequence, a bidi override) shown as visible escapes.  Styles come
only from code, through `styled` and the `style=` of a table column.  `PlainConsole`
applies the rule in one place, so every command (and every future one) gets it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console, HighlighterType, JustifyMethod, OverflowMethod
from rich.style import Style
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import DBAPIError

from headwater.adapters.store.database import store_error
from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.errors import (
    BAD_REQUEST,
    HeadwaterError,
    InvalidInput,
    error_type,
    redact,
)
from headwater.kernel.values import document_value
from headwater.services.app import App

P = ParamSpec("P")
R = TypeVar("R")

# C0 and C1 control characters except newline and tab, and the Unicode bidi controls
# that can make a terminal show text in another order than it is stored.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """`value` as text whose control characters are shown as escapes, never obeyed."""
    return _INVISIBLE.sub(_escape, str(value))


class PlainConsole(Console):
    """A console that shows every string as text (see the module docstring).

    `render_str` is where rich turns each printed string and each table cell into
    `Text`; here it never parses markup or emoji codes and never highlights.
    """

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: HighlighterType | None = None,
    ) -> Text:
        del emoji, markup, highlight, highlighter  # asked for or not: never (the rule above)
        return Text(visible(text), style=style, justify=justify, overflow=overflow)


out = PlainConsole(soft_wrap=True, markup=False, emoji=False, highlight=False)
# Not wrapped by us: an error keeps its paths and commands whole for copying.
err = PlainConsole(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def styled(*parts: object | tuple[object, str]) -> Text:
    """Text from plain parts and ``(part, style)`` pairs; no part is read as markup.

    ``styled(("error:", "red"), " ", message)``: the style comes from code, the words
    from anywhere.
    """
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(visible(part[0]), style=part[1])
        else:
            text.append(visible(part))
    return text


def say(*parts: object | tuple[object, str], to: Console = out) -> None:
    """Print one line built by `styled`."""
    to.print(styled(*parts))


def warn(message: object, indent: str = "") -> None:
    """Print ``warning: message`` (the message as text) on standard output."""
    say(indent, ("warning:", "yellow"), " ", message)


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=document_value, ensure_ascii=False))


# How narrow a column that cannot hold its longest word may get: its cells then end
# with "…" (three characters and the ellipsis at least).
_NARROWEST = 4
#: An id in a cell (`pipelines list`'s last run, ``run_…``) is never cut either.
_ID_WORD = re.compile(r"[a-z]+_[0-9a-f]{12}")


def _table(columns: Sequence[str], cells: list[list[str]], widths: Sequence[int]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name, width in zip(columns, widths, strict=True):
        t.add_column(name, overflow="ellipsis", width=width)
    for row in cells:
        t.add_row(*row)
    return t


def _lines(t: Table, width: int) -> list[Text]:
    """`t` rendered `width` wide, line by line, without the padding at line ends."""
    lines = []
    for segments in out.render_lines(t, out.options.update(width=width), pad=False):
        line = Text.assemble(*((s.text, s.style or "") for s in segments if not s.control))
        line.rstrip()
        lines.append(line)
    return lines


def _table_width() -> int | None:
    """The width a table fits: the terminal's, or ``COLUMNS`` when given; None (as wide
    as its rows) when stdout is not a terminal and no ``COLUMNS`` asks for a width, so
    that what ``grep`` or ``awk`` read is one whole row per line."""
    if out.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return out.width
    return None


def _shrink(widths: list[int], floors: list[int], budget: int) -> None:
    """Narrow the widest column above its floor, one character at a time, to `budget`."""
    while sum(widths) > budget:
        index = max(range(len(widths)), key=lambda i: widths[i] - floors[i])
        if widths[index] <= floors[index]:
            return
        widths[index] -= 1


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], ids: Sequence[str] = ("id",)
) -> None:
    """Print rows as a table (README, "Tables").  Piped, one line per row with every
    value whole (`_table_width`).  On a terminal it fits the width: `ids` columns keep
    their full width on one line (so an id can be copied whole), the other columns wrap
    between words, and only when a column cannot hold its longest word does a cell
    end with "…" (never one holding an id); no word is ever broken in two."""
    cells = [["" if v is None else visible(shown(v)) for v in row] for row in rows]
    natural: list[int] = []
    words: list[int] = []  # how narrow each column gets before a word is cut
    narrowest: list[int] = []  # how narrow it gets at all
    for index, name in enumerate(columns):
        column = [name, *(row[index] for row in cells)]
        natural.append(max(cell_len(line) for cell in column for line in [*cell.splitlines(), ""]))
        every = [w for cell in column for w in cell.split()]
        longest = max((cell_len(w) for w in every), default=1)
        an_id = max((cell_len(w) for w in every if _ID_WORD.fullmatch(w)), default=0)
        words.append(natural[-1] if name in ids else longest)
        narrowest.append(natural[-1] if name in ids else max(min(longest, _NARROWEST), an_id))
    ruled = _lines(_table(columns, [], [1] * len(columns)), 1000)  # a header, its rule
    gaps = max(line.cell_len for line in ruled) - len(columns)
    widths = list(natural)
    width = _table_width()
    if width is not None:
        budget = width - gaps
        _shrink(widths, words, budget)  # words kept whole, wrapped between them
        _shrink(widths, narrowest, budget)  # then the longest words cut, with "…"
    for line in _lines(_table(columns, cells, widths), sum(widths) + gaps):
        out.print(line, soft_wrap=True)


def confirm(question: str, yes: bool) -> None:
    """Ask `question` unless ``--yes`` (`yes`) answered it.  It is asked on stderr, so
    that stdout holds only what the command prints (with ``--json``, one document);
    anything but yes, or no answer at all (a script without ``--yes``, Ctrl-D), is an
    error at ``--yes`` and the command changes nothing; Ctrl-C stays an interruption
    ("Aborted!", exit 130)."""
    if yes:
        return
    try:
        confirmed = click.confirm(question, err=True)
    except click.exceptions.Abort as exc:  # end of input, or Ctrl-C, at the question
        _reraise_ctrl_c(exc)
        confirmed = False
    if not confirmed:
        raise InvalidInput("not confirmed, nothing was changed (--yes confirms)", "--yes")


def ask_hidden(question: str, field: str, what: str, *, twice: bool = False) -> str:
    """Ask `question` at the terminal, on stderr, the answer hidden (`twice`: then
    again, to confirm it).  Ctrl-D (the end of input) there is no answer: an error at
    `field` (``no {what} given``), printed as every error is (with ``--json``, the
    error document); Ctrl-C stays an interruption ("Aborted!", exit 130)."""
    try:
        return str(click.prompt(question, hide_input=True, confirmation_prompt=twice, err=True))
    except click.exceptions.Abort as exc:
        _reraise_ctrl_c(exc)
        raise InvalidInput(f"no {what} given (end of input at the question)", field) from None


def _reraise_ctrl_c(abort: click.exceptions.Abort) -> None:
    """Raise `abort` on when Ctrl-C made it (click aborts on Ctrl-D too, at a question)."""
    if isinstance(abort.__context__, KeyboardInterrupt):
        raise abort


def print_error(
    kind: str, message: str, field: str | None, as_json: bool, shown: str | None = None
) -> None:
    """The one-line error on stderr (`shown`, else `message`); with ``--json`` also the
    API's error document, ``{"error": {"type", "message", "field"}}``, as the one
    document on stdout."""
    if as_json:
        print_json({"error": {"type": kind, "message": message, "field": field}})
    say(("error:", "red"), " ", message if shown is None else shown, to=err)


def option_name(option: click.Option) -> str:
    """How an error names `option`: its longest spelling (``--requests-per-second``)."""
    return max(option.opts, key=len)


#: How an option reads a field's value rather than taking it: ``--api-key-env VAR``
#: and ``--api-key-file FILE`` give ``api_key``, ``--password-stdin`` ``password``.
READ_THROUGH = ("_env", "_file", "_stdin")


def _root(location: str) -> str:
    """A location's first part: ``identifiers`` of ``identifiers[1]``, ``a`` of ``a.b``."""
    return re.split(r"[.\[]", location, maxsplit=1)[0]


def _option_at(location: str) -> str | None:
    """The option of the running command that gives the field at `location`, spelled as
    typed, with the rest of the location (``--identifiers[1]``); None if none does.

    An option gives the field its parameter or its long spelling names (``--connection``
    sets ``connection_id``; ``--filter``, stored as ``filter_file``, the ``filter``).  A
    location that begins with the value of one of the command's arguments names that
    value (``model add-property description``), whatever option shares its name.  An
    option the user gave that reads the field (`READ_THROUGH`: ``--api-key-file``)
    names it too."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    root = _root(location)
    params = context.command.params
    values = [context.params.get(p.name or "") for p in params if isinstance(p, click.Argument)]
    if any(isinstance(v, str) and _root(v) == root for v in values):
        return None
    for param in params:
        if not isinstance(param, click.Option) or not param.opts:
            continue
        fields = {param.name, *(o[2:].replace("-", "_") for o in param.opts if o[:2] == "--")}
        if root in fields:
            return option_name(param) + location[len(root) :]
    through = {f"{root}{way}" for way in READ_THROUGH}
    for param in params:  # a secret read through an option the user gave
        if isinstance(param, click.Option) and param.name in through and context.params[param.name]:
            return option_name(param) + location[len(root) :]
    return None


def shown_message(exc: HeadwaterError) -> str:
    """`exc`'s message as the command line prints it: located at a field that an option
    of the running command gives, it names the option (``--requests-per-second: must
    be...``, where the API says ``requests_per_second: must be...``); else unchanged.
    Problems inside a document (a mapping's property ``name``) keep their locations."""
    if not isinstance(exc, InvalidInput) or exc.in_document or not exc.location:
        return exc.message
    prefix = f"{exc.location}: "
    option = _option_at(exc.location)
    if option is None or not exc.message.startswith(prefix):
        return exc.message
    return f"{option}: {exc.message.removeprefix(prefix)}"


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Render Headwater errors as one clear line on stderr (and, with ``--json``, as an
    error document on stdout) and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except HeadwaterError as exc:
            field = exc.location if isinstance(exc, InvalidInput) else None
            print_error(error_type(exc), exc.message, field, as_json, shown_message(exc))
            sys.exit(1)
        except (OSError, ValueError) as exc:
            print_error(BAD_REQUEST, redact(str(exc)), None, as_json)
            sys.exit(1)
        except DBAPIError as exc:  # the store locked past its busy timeout, or away
            failure = store_error(exc)
            if failure is None:
                raise  # a bug's: with its traceback
            print_error(error_type(failure), failure.message, None, as_json)
            sys.exit(1)

    return wrapper


#: Where `headwater --workspace ID` leaves the workspace for `opened_app` (click's meta
#: is shared by every context of one invocation).
WORKSPACE_META = "headwater.workspace"


@contextmanager
def opened_app() -> Iterator[App]:
    """The app of the workspace this command acts on: the one `headwater --workspace ID`
    names, else the default workspace."""
    app = App.open(settings_from_env())
    try:
        context = click.get_current_context(silent=True)
        workspace_id = context.meta.get(WORKSPACE_META) if context is not None else None
        yield app if workspace_id is None else app.in_workspace(workspace_id)
    finally:
        app.close()


def show_document(doc: dict[str, Any], as_json: bool) -> None:
    """Print `doc` as one JSON document, or as aligned ``key: value`` lines."""
    if as_json:
        print_json(doc)
        return
    width = max((len(k) for k in doc), default=0)
    for key, value in doc.items():
        say(f"{key:>{width}}: ", shown(value))


def shown(value: Any) -> str:
    """A value as its JSON document spells it (``null``, ``true``, a list or an object
    as JSON; Python's ``None`` or ``{'a': True}`` is neither that nor anything a user
    types back); a string as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | Decimal):
        return document_value(value)
    return json.dumps(value, default=document_value, ensure_ascii=False)
