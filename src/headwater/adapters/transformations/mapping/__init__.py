"""The mapping transformation (DESIGN.md §5): ``{customer_model_path: expression}``.

Expressions are a small, safe language (parsed with lark, compiled to closures; never
Python ``eval``).  See `parser` for the syntax and `functions` for the library.
"""

from __future__ import annotations

from headwater.adapters.transformations.mapping.compiler import compile_expr
from headwater.adapters.transformations.mapping.functions import FUNCTIONS
from headwater.adapters.transformations.mapping.parser import (
    Expr,
    ExpressionError,
    parse_expression,
)
from headwater.adapters.transformations.mapping.runtime import EvalError
from headwater.adapters.transformations.mapping.suggest import suggest_mapping
from headwater.adapters.transformations.mapping.transformation import (
    MappingTransformation,
    compile_mapping,
    mapping_problems,
)

__all__ = [
    "FUNCTIONS",
    "EvalError",
    "Expr",
    "ExpressionError",
    "MappingTransformation",
    "compile_expr",
    "compile_mapping",
    "mapping_problems",
    "parse_expression",
    "suggest_mapping",
]
