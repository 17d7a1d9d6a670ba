"""The function library of mapping expressions: static signatures and run-time closures.

Every function returns null when one of its arguments is null, except `coalesce`,
`if`, `is_null` and the boolean operators (``and``/``or`` use three-valued logic as in
SQL: ``false and null`` is false, ``true or null`` is true).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from headwater.adapters.transformations.mapping import runtime as rt
from headwater.adapters.transformations.mapping.types import NUMERIC, SCALAR, TEMPORAL, T, unify
from headwater.kernel import json_text

Fn = Callable[[Any], Any]  # compiled expression: record -> value

_STR = frozenset({T.STRING})
_INT = frozenset({T.INTEGER})
_BOOL = frozenset({T.BOOLEAN})
_ALL = frozenset(T)


@dataclass(frozen=True)
class Function:
    """`params` gives accepted types per position; with `variadic` the last repeats."""

    name: str
    params: tuple[frozenset[T], ...]
    result: Callable[[list[T]], T]
    build: Callable[[list[Fn]], Fn]
    min_args: int = -1  # default: len(params)
    variadic: bool = False
    doc: str = ""

    @property
    def least(self) -> int:
        return len(self.params) if self.min_args < 0 else self.min_args


def _const(t: T) -> Callable[[list[T]], T]:
    return lambda _types: t


def _first(types: list[T]) -> T:
    return types[0]


def _strict(op: Callable[..., Any]) -> Callable[[list[Fn]], Fn]:
    """Null in any argument gives null; otherwise ``op(*values)``."""

    def build(args: list[Fn]) -> Fn:
        if len(args) == 1:
            (a,) = args
            return lambda r: None if (v := a(r)) is None else op(v)
        if len(args) == 2:
            a, b = args

            def two(r: Any) -> Any:
                x, y = a(r), b(r)
                return None if x is None or y is None else op(x, y)

            return two

        def many(r: Any) -> Any:
            values = [f(r) for f in args]
            return None if any(v is None for v in values) else op(*values)

        return many

    return build


def _coalesce(args: list[Fn]) -> Fn:
    def fn(r: Any) -> Any:
        for f in args:
            v = f(r)
            if v is not None:
                return v
        return None

    return fn


def _if(args: list[Fn]) -> Fn:
    cond, then, other = args
    return lambda r: then(r) if rt.boolean(cond(r), "if") is True else other(r)


def _is_null(args: list[Fn]) -> Fn:
    (a,) = args
    return lambda r: a(r) is None


def _and(args: list[Fn]) -> Fn:
    a, b = args

    def fn(r: Any) -> Any:
        x = rt.boolean(a(r), "and")
        if x is False:
            return False
        y = rt.boolean(b(r), "and")
        return False if y is False else (None if x is None or y is None else True)

    return fn


def _or(args: list[Fn]) -> Fn:
    a, b = args

    def fn(r: Any) -> Any:
        x = rt.boolean(a(r), "or")
        if x is True:
            return True
        y = rt.boolean(b(r), "or")
        return True if y is True else (None if x is None or y is None else False)

    return fn


class Const:
    """A compiled constant; builders look at `value` to specialise their closure."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, _record: Any) -> Any:
        return self.value


def _method(method: Callable[[str], str], name: str) -> Callable[[list[Fn]], Fn]:
    """A one-argument string function, with the type test inlined for speed."""

    def build(args: list[Fn]) -> Fn:
        (a,) = args

        def fn(r: Any) -> Any:
            v = a(r)
            if type(v) is str:
                return method(v)
            return None if v is None else method(rt.text(v, name))

        return fn

    return build


_MAX_SPLITS = 1 << 31


def _split_fields(generic: Callable[[Any, Any, Any], str], rest: bool) -> Callable[[list[Fn]], Fn]:
    """`split_part` (``rest=False``) or `split_rest`, specialised for a constant
    delimiter and a constant positive field number (the common case, e.g. names).

    ``v.split(sep, k)`` keeps everything after the k-th delimiter in one last piece:
    that piece is the rest, and the piece before it the k-th field.
    """

    def build(args: list[Fn]) -> Fn:
        text, delim, n = args
        if not (isinstance(delim, Const) and isinstance(n, Const)):
            return _strict(generic)(args)
        sep, pos = delim.value, n.value
        # str.split takes a C ssize_t: a field number past it (past any text's
        # fields anyway) goes the generic way, which answers ''.
        if not (type(sep) is str and sep and type(pos) is int and 0 < pos < _MAX_SPLITS):
            return _strict(generic)(args)
        index = pos - 1
        splits = index if rest else index + 1

        def fn(r: Any) -> Any:
            v = text(r)
            if type(v) is str:
                parts = v.split(sep, splits)
                return parts[index] if index < len(parts) else ""
            return None if v is None else generic(v, sep, pos)

        return fn

    return build


def _initcap(v: Any) -> str:
    # PostgreSQL initcap: first letter of each alphanumeric run upper, the rest lower.
    out, start = [], True
    for ch in rt.text(v, "initcap"):
        out.append(ch.upper() if start else ch.lower())
        start = not ch.isalnum()
    return "".join(out)


def _len(v: Any) -> int:
    if isinstance(v, str | list | dict):
        return len(v)
    raise rt.EvalError(f"len() expects a string, array or object, got {rt.show(v)}")


def _from_unix(v: Any) -> datetime:
    seconds = rt.number(v, "from_unix")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise rt.EvalError(f"from_unix() got an out-of-range value {rt.show(v)}") from None


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.astimezone(UTC).date() if v.tzinfo else v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        return rt.parse_date(v)
    return _from_unix(v).date()


def _json_parse(v: Any) -> Any:
    try:  # JSON as RFC 8259 has it: no NaN, no lone surrogate (`kernel.json_text`)
        return json_text.loads(rt.text(v, "json_parse"))
    except json.JSONDecodeError as exc:
        raise rt.EvalError(f"json_parse() got invalid JSON {rt.show(v)}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # a number past 4,300 digits, deep nesting
        why = "nested too deep" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise rt.EvalError(f"json_parse() got invalid JSON {rt.show(v)}: {why}") from None


def _concat(*values: Any) -> str:
    return rt.sized("".join(rt.to_text(v) for v in values), "concat")


def _nullif_build(args: list[Fn]) -> Fn:
    a, b = args
    if isinstance(b, Const):
        c = b.value
        return lambda r: None if (x := a(r)) is None or x == c else x
    return lambda r: None if (x := a(r)) is None or x == b(r) else x


def _cmp(op: str) -> Callable[[list[Fn]], Fn]:
    return _strict(lambda x, y: rt.compare(op, x, y))


def _table() -> dict[str, Function]:
    F = Function
    items = [
        F("coalesce", (_ALL,), unify, _coalesce, 1, True, "first argument that is not null"),
        F("if", (_BOOL, _ALL, _ALL), lambda ts: unify(ts[1:]), _if, doc="if(cond, then, else)"),
        F("is_null", (_ALL,), _const(T.BOOLEAN), _is_null),
        F("concat", (SCALAR,), _const(T.STRING), _strict(_concat), 1, True),
        F("lower", (_STR,), _const(T.STRING), _method(str.lower, "lower")),
        F("upper", (_STR,), _const(T.STRING), _method(str.upper, "upper")),
        F("trim", (_STR,), _const(T.STRING), _method(str.strip, "trim")),
        F("initcap", (_STR,), _const(T.STRING), _strict(_initcap)),
        F("substring", (_STR, _INT, _INT), _const(T.STRING), _strict(rt.substring), 2),
        F("replace", (_STR, _STR, _STR), _const(T.STRING), _strict(rt.replace)),
        F("split_part", (_STR, _STR, _INT), _const(T.STRING), _split_fields(rt.split_part, False)),
        F("split_rest", (_STR, _STR, _INT), _const(T.STRING), _split_fields(rt.split_rest, True)),
        F("len", (frozenset({T.STRING, T.ARRAY, T.OBJECT}),), _const(T.INTEGER), _strict(_len)),
        F("from_unix", (NUMERIC,), _const(T.DATETIME), _strict(_from_unix)),
        F(
            "to_date",
            (frozenset({T.STRING, *NUMERIC, *TEMPORAL}),),
            _const(T.DATE),
            _strict(_to_date),
        ),
        F("json_parse", (_STR,), _const(T.ANY), _strict(_json_parse)),
        F("to_string", (SCALAR,), _const(T.STRING), _strict(rt.to_text)),
        F("nullif", (_ALL, _ALL), _first, _nullif_build),
        F("and", (_BOOL, _BOOL), _const(T.BOOLEAN), _and),
        F("or", (_BOOL, _BOOL), _const(T.BOOLEAN), _or),
        F("not", (_BOOL,), _const(T.BOOLEAN), _strict(lambda v: not rt.boolean(v, "not"))),
    ]
    for op in ("==", "!=", "<", "<=", ">", ">="):
        items.append(F(op, (_ALL, _ALL), _const(T.BOOLEAN), _cmp(op)))
    return {f.name: f for f in items}


#: Every function (and operator) of the expression language, by name.
FUNCTIONS: dict[str, Function] = _table()
