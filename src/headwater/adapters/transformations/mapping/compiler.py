"""Type-checking an expression against the source schema and compiling it to a closure.

The result is a plain Python closure ``record -> value`` built once, so a record is
evaluated without walking the AST.  Calls whose arguments are all constants are
folded at compile time (so ``split_part(name, " ", 0)``-style mistakes in constants are
reported when the mapping is saved).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from headwater.adapters.transformations.mapping.functions import FUNCTIONS, Const, Fn, Function
from headwater.adapters.transformations.mapping.parser import (
    Call,
    Expr,
    ExpressionError,
    Literal,
    Path,
)
from headwater.adapters.transformations.mapping.runtime import EvalError
from headwater.adapters.transformations.mapping.types import NUMERIC, TEMPORAL, T, article, of_field
from headwater.kernel.schema import SCALARS, FieldType, Kind, leaf_paths


@dataclass(frozen=True)
class Compiled:
    type: T
    fn: Fn
    constant: bool = False
    field: FieldType | None = None  # for bare paths: the source field


def compile_expr(expr: Expr, root: FieldType) -> Compiled:
    """Type-check and compile `expr`; raise `ExpressionError` at the offending node."""
    if isinstance(expr, Literal):
        return _literal(expr.value)
    if isinstance(expr, Path):
        return _path(expr, root)
    return _call(expr, root)


def _literal(value: Any) -> Compiled:
    if value is None:
        t = T.NULL
    elif isinstance(value, bool):
        t = T.BOOLEAN
    elif isinstance(value, int):
        t = T.INTEGER
    elif isinstance(value, float):
        t = T.NUMBER
    elif isinstance(value, str):
        t = T.STRING
    else:
        t = T.ANY
    return Compiled(t, Const(value), constant=True)


def resolve(path: Path, root: FieldType) -> tuple[list[str], FieldType]:
    """Record keys and type of a path; in a map of scalars, dotted rest is one key."""
    keys: list[str] = []
    current = root
    segs = path.segments
    i = 0
    while i < len(segs):
        key = segs[i][0]
        items = current.items if current.kind is Kind.MAP else None
        if items is not None and items.kind in SCALARS and not any(b for _, b in segs[i:]):
            key = ".".join(k for k, _ in segs[i:])
            i = len(segs) - 1
        child = current.child(key)
        if child is None:
            raise ExpressionError(_unknown(path, keys, key, current, root), path.line, path.column)
        keys.append(key)
        current = child
        i += 1
    return keys, current


def _unknown(path: Path, keys: list[str], key: str, parent: FieldType, root: FieldType) -> str:
    where = ".".join(keys)
    if parent.kind not in (Kind.OBJECT, Kind.MAP, Kind.JSON):
        return f"{where!r} is {article(parent.describe())}; it has no field {key!r}"
    close = difflib.get_close_matches(path.text, [p for p, _ in leaf_paths(root)], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown Stripe customer field {path.text!r}{hint}"


def _path(path: Path, root: FieldType) -> Compiled:
    keys, field = resolve(path, root)
    return Compiled(of_field(field), getter(tuple(keys)), field=field)


def getter(keys: tuple[str, ...]) -> Fn:
    """Accessor for `keys`: None when a key is missing or a parent is not an object."""
    if len(keys) == 1:
        (k,) = keys
        return lambda r: r.get(k)
    if len(keys) == 2:
        k1, k2 = keys

        def get2(r: Any) -> Any:
            parent = r.get(k1)
            return parent.get(k2) if type(parent) is dict else None

        return get2

    def get_n(r: Any) -> Any:
        value = r
        for k in keys:
            if type(value) is not dict:
                return None
            value = value.get(k)
        return value

    return get_n


def _call(call: Call, root: FieldType) -> Compiled:
    spec = FUNCTIONS.get(call.name)
    if spec is None:
        names = [n for n in FUNCTIONS if n.isidentifier()]
        close = difflib.get_close_matches(call.name, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "expected one of " + ", ".join(names)
        raise ExpressionError(f"unknown function {call.name!r}; {hint}", call.line, call.column)
    _check_arity(spec, call)
    args = [compile_expr(a, root) for a in call.args]
    for i, (arg, node) in enumerate(zip(args, call.args, strict=True)):
        allowed = spec.params[min(i, len(spec.params) - 1)]
        if arg.type not in allowed and arg.type not in (T.ANY, T.NULL):
            want = " or ".join(sorted(str(t) for t in allowed))
            raise ExpressionError(
                f"{_label(call)} expects {want} as argument {i + 1}, got {arg.type}",
                node.line,
                node.column,
            )
    if call.name in ("==", "!=", "<", "<=", ">", ">="):
        _check_comparison(call, args[0].type, args[1].type)
    result = Compiled(spec.result([a.type for a in args]), spec.build([a.fn for a in args]))
    if args and all(a.constant for a in args):
        return _fold(result, call)
    return result


def _label(call: Call) -> str:
    return (
        f"{call.name}()"
        if call.name.isidentifier() and call.name not in _WORDS
        else (f'operator "{call.name}"')
    )


_WORDS = frozenset({"and", "or", "not"})


def _check_arity(spec: Function, call: Call) -> None:
    n, least, most = len(call.args), spec.least, len(spec.params)
    if n < least or (not spec.variadic and n > most):
        if spec.variadic:
            want = f"at least {least}"
        elif least == most:
            want = str(least)
        else:
            want = f"{least} to {most}"
        raise ExpressionError(
            f"{_label(call)} takes {want} argument{'s' if want != '1' else ''}, got {n}",
            call.line,
            call.column,
        )


def _family(t: T) -> str:
    if t in NUMERIC:
        return "number"
    if t in TEMPORAL:
        return "date"
    return str(t)


def _check_comparison(call: Call, a: T, b: T) -> None:
    if T.ANY in (a, b) or T.NULL in (a, b):
        return
    fa, fb = _family(a), _family(b)
    ordering = call.name not in ("==", "!=")
    if fa != fb or (ordering and fa in ("boolean", "array", "object")):
        raise ExpressionError(
            f"cannot compare {a} with {b} using {call.name}; expected two values of the "
            "same kind (text, number, date or boolean)",
            call.line,
            call.column,
        )


def _fold(result: Compiled, call: Call) -> Compiled:
    try:
        value = result.fn({})
    except EvalError as exc:
        raise ExpressionError(str(exc), call.line, call.column) from None
    return Compiled(result.type, Const(value), constant=True)
