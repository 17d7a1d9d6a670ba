"""Save-time check of a Python transformation: compiled, never executed, here."""

from __future__ import annotations

import ast

from headwater.kernel.errors import InvalidInput

#: Longest source accepted, in characters.
MAX_SOURCE = 1_000_000
FILENAME = "<transformation>"


def validate_python(source: str) -> None:
    """Raise `InvalidInput` (with the line) when `source` does not compile or does not
    define ``transform(customer)`` at top level.

    Only the compiler runs: module-level code is not executed in this process.
    """
    if len(source) > MAX_SOURCE:
        raise InvalidInput(f"the code is longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(source, FILENAME)
        compile(tree, FILENAME, "exec")
    except SyntaxError as exc:  # no line for some (a NUL character in the source)
        where = f"line {exc.lineno}" if exc.lineno is not None else None
        raise InvalidInput(f"SyntaxError: {exc.msg}", where) from None
    except (RecursionError, MemoryError):  # how CPython's parser gives up on deep nesting
        raise InvalidInput(
            "the code cannot be compiled: an expression or a block is nested too deeply"
        ) from None
    except ValueError as exc:  # e.g. a NUL character in the source
        raise InvalidInput(f"the code cannot be compiled: {exc}") from None
    _check_transform(tree)


def _check_transform(tree: ast.Module) -> None:
    bound = False
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "transform":
            raise InvalidInput("transform must be a plain def, not async", f"line {node.lineno}")
        if isinstance(node, ast.FunctionDef) and node.name == "transform":
            _check_signature(node)
            bound = True
        elif _binds_transform(node):
            bound = True  # e.g. ``transform = make_transform()``: checked when it runs
    if not bound:
        raise InvalidInput("the code does not define a function named transform")


def _binds_transform(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id == "transform" for t in targets)
    if isinstance(node, ast.ImportFrom | ast.Import):
        return any((a.asname or a.name) == "transform" for a in node.names)
    return False


def _check_signature(node: ast.FunctionDef) -> None:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    required_kw = [a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    takes_one = required <= 1 and (len(positional) >= 1 or args.vararg is not None)
    if not takes_one or required_kw:
        raise InvalidInput(
            "transform must take exactly one argument (the customer)", f"line {node.lineno}"
        )
