"""Parsing mapping expressions into a small AST (lark, LALR; never Python eval).

Syntax, loosest binding first::

    a or b          a and b          not a
    a == b   a != b   a < b   a <= b   a > b   a >= b      (``=`` also means ``==``)
    "text"  'text'  42  -1.5  true  false  null
    email   address.city   metadata.plan   metadata["plan name"]
    lower(trim(email))     split_part(name, " ", 1)       (expr)

Operators are represented as calls (``==``, ``and``, ``not``...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

_GRAMMAR = r"""
?start: expr
?expr: or_expr
?or_expr: and_expr | or_expr OR and_expr -> binop
?and_expr: not_expr | and_expr AND not_expr -> binop
?not_expr: comparison | NOT not_expr -> unop
?comparison: atom | atom COMP atom -> binop
?atom: STRING -> string
     | NUMBER -> number
     | TRUE -> true
     | FALSE -> false
     | NULL -> null
     | NAME "(" [expr ("," expr)*] ")" -> call
     | NAME segment* -> path
     | "(" expr ")"
segment: "." NAME | "[" STRING "]"
OR: "or"
AND: "and"
NOT: "not"
TRUE: "true"
FALSE: "false"
NULL: "null"
COMP: "==" | "!=" | "<=" | ">=" | "<" | ">" | "="
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
NUMBER: /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
%ignore /[ \t\r\n]+/
"""

_EXPECTED = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "LPAR": '"("',
    "RPAR": '")"',
    "COMMA": '","',
    "DOT": '"."',
    "LSQB": '"["',
    "RSQB": '"]"',
    "COMP": "a comparison",
    "OR": '"or"',
    "AND": '"and"',
    "NOT": '"not"',
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "$END": "the end of the expression",
}


class ExpressionError(ValueError):
    """A positioned error in an expression (1-based line and column)."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.line = line
        self.column = column
        self.detail = message
        super().__init__(f"line {line}, column {column}: {message}")


@dataclass(frozen=True)
class Literal:
    value: Any
    line: int
    column: int


@dataclass(frozen=True)
class Path:
    segments: tuple[tuple[str, bool], ...]  # (key, came from ["..."])
    line: int
    column: int

    @property
    def text(self) -> str:
        out = ""
        for key, bracket in self.segments:
            out += f'["{key}"]' if bracket else (f".{key}" if out else key)
        return out


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    line: int
    column: int


Expr = Literal | Path | Call

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/"}
# A character outside the Basic Multilingual Plane is written, as in JSON and
# JavaScript, as a pair of \\u escapes (😀 is \\ud83d\\ude00): the pair is matched first.
_ESCAPE = re.compile(
    r"\\(u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_HALF = (
    "half of a character (a lone surrogate): a character outside the Basic "
    "Multilingual Plane takes two \\u escapes, e.g. \\ud83d\\ude00 for 😀"
)


def _unescape(tok: Token) -> str:
    body = tok.value[1:-1]
    line, start = tok.line or 1, (tok.column or 1) + 1  # the column of body[0]

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("u") and len(code) == 11:
            high, low = int(code[1:5], 16), int(code[7:], 16)
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        if code.startswith("u") and len(code) == 5:
            char = chr(int(code[1:], 16))
            if _SURROGATE.match(char):
                raise ExpressionError(_HALF, line, start + m.start())
            return char
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise ExpressionError(f"unknown escape \\{code} in a string", line, start + m.start())

    raw = _SURROGATE.search(body)  # only from text that was not JSON-decoded properly
    if raw is not None:
        raise ExpressionError(_HALF, line, start + raw.start())
    return _ESCAPE.sub(one, body)


def _pos(tok: Token) -> tuple[int, int]:
    return tok.line or 1, tok.column or 1


@v_args(inline=True)
class _ToAst(Transformer[Token, Expr]):
    def string(self, tok: Token) -> Literal:
        return Literal(_unescape(tok), *_pos(tok))

    def number(self, tok: Token) -> Literal:
        text = tok.value
        try:  # Python reads integers of at most 4,300 digits from text
            value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            value = math.inf
        if isinstance(value, float) and not math.isfinite(value):
            shown = text if len(text) <= 40 else f"{text[:20]}… ({len(text)} digits)"
            raise ExpressionError(f"number {shown} is out of range", *_pos(tok))
        return Literal(value, *_pos(tok))

    def true(self, tok: Token) -> Literal:
        return Literal(True, *_pos(tok))

    def false(self, tok: Token) -> Literal:
        return Literal(False, *_pos(tok))

    def null(self, tok: Token) -> Literal:
        return Literal(None, *_pos(tok))

    def call(self, name: Token, *args: Expr | None) -> Call:
        return Call(name.value, tuple(a for a in args if a is not None), *_pos(name))

    def segment(self, tok: Token) -> tuple[str, bool]:
        if tok.type == "STRING":
            return _unescape(tok), True
        return tok.value, False

    def path(self, head: Token, *segments: tuple[str, bool]) -> Path:
        return Path(((head.value, False), *segments), *_pos(head))

    def binop(self, left: Expr, op: Token, right: Expr) -> Call:
        name = "==" if op.value == "=" else op.value
        return Call(name, (left, right), *_pos(op))

    def unop(self, op: Token, operand: Expr) -> Call:
        return Call("not", (operand,), *_pos(op))


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)


def parse_expression(text: str) -> Expr:
    """Parse `text`; raise `ExpressionError` with the line and column of the problem."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be a string", 1, 1)
    if not text.strip():
        raise ExpressionError("the expression is empty", 1, 1)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _positioned(exc, text) from None
    _check_depth(tree)
    try:
        result = _ToAst().transform(tree)
    except Exception as exc:  # lark wraps errors raised in callbacks
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, ExpressionError):
            raise inner from None
        raise
    return result


#: How deep calls, operators and paths may nest (a real mapping needs a few levels; the
#: transformation to the AST, and evaluation, recurse once per level).
MAX_DEPTH = 64


def _check_depth(tree: Tree[Token]) -> None:
    """Refuse, at its first token, a part of the expression nested deeper than
    `MAX_DEPTH` (walked without recursion: 600 nested ``not`` exhausted Python's stack)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            first = next(node.scan_values(lambda v: isinstance(v, Token)), None)
            line, column = (first.line or 1, first.column or 1) if first else (1, 1)
            raise ExpressionError(
                f"the expression nests more than {MAX_DEPTH} levels deep; simplify it",
                line,
                column,
            )
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))


def _positioned(exc: UnexpectedInput, text: str) -> ExpressionError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        char = text[at] if at < len(text) else ""
        what = "an unterminated string" if char in "\"'" else f"unexpected character {char!r}"
        return ExpressionError(f"{what}; expected {_expected(exc.allowed)}", line, column)
    if isinstance(exc, UnexpectedEOF):
        lines = text.split("\n")
        return ExpressionError(
            f"unexpected end of the expression; expected {_expected(exc.expected)}",
            len(lines),
            len(lines[-1]) + 1,
        )
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            lines = text.split("\n")
            line, column = len(lines), len(lines[-1]) + 1
            found = "end of the expression"
        else:
            found = repr(exc.token.value)
        return ExpressionError(
            f"unexpected {found}; expected {_expected(exc.expected)}", line, column
        )
    return ExpressionError(str(exc).split("\n", 1)[0], line, column)


def _expected(names: Iterable[Any] | None) -> str:
    readable = sorted({_EXPECTED.get(str(n), str(n).lower()) for n in names or ()})
    if not readable:
        return "a valid expression"
    return readable[0] if len(readable) == 1 else ", ".join(readable[:-1]) + " or " + readable[-1]
