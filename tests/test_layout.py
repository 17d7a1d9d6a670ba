"""The size limits of DESIGN.md §2 and CONVENTIONS.md: modules under 400 lines,
function bodies under 60 (signature and docstring not counted).  Migrations are
exempt: they are frozen records of the schema at one revision."""

from __future__ import annotations

import ast
from pathlib import Path

import headwater

PACKAGE = Path(headwater.__file__).parent
MAX_MODULE_LINES = 400
MAX_BODY_LINES = 60


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts]


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    end = body[-1].end_lineno or body[-1].lineno
    return end - body[0].lineno + 1


def test_the_package_has_modules_to_check() -> None:
    assert len(_modules()) > 100


def test_modules_stay_under_400_lines() -> None:
    too_long = {
        str(p.relative_to(PACKAGE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_function_bodies_stay_under_60_lines() -> None:
    too_long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = _body_lines(node)
                if lines > MAX_BODY_LINES:
                    too_long[f"{path.relative_to(PACKAGE)}:{node.name}"] = lines
    assert too_long == {}
