"""A safe calculator: arithmetic on numbers only, parsed with `ast`, never `eval`."""

from __future__ import annotations

import ast
import math
import operator
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import SessionContext
from agent_tools.servers.tooling import RejectedCall, add_tools, answer
from models.errors import CalculationError

MAX_EXPRESSION = 500
MAX_EXPONENT = 1000
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "floor": math.floor,
    "ceil": math.ceil,
}


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate arithmetic (+ - * / // % **, parentheses, a few math functions) on numbers."""
    if len(expression) > MAX_EXPRESSION:
        raise CalculationError(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise CalculationError(f"not an arithmetic expression: {expression!r}") from None
    try:
        return _evaluate(tree.body)
    except CalculationError:
        raise
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        raise CalculationError(f"cannot compute {expression!r}: {exc}") from None


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"exponent larger than {MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args))
    raise CalculationError(f"only numbers and arithmetic are allowed, not {ast.unparse(node)!r}")


def register(server: FastMCP, context: SessionContext) -> None:
    """Add the calculator to `server`."""

    async def calculate(
        expression: Annotated[str, Field(description="e.g. (10000 - 2555.5) / 189.6")],
    ) -> str:
        """Evaluate an arithmetic expression."""
        try:
            return answer({"expression": expression, "result": evaluate_arithmetic(expression)})
        except CalculationError as exc:
            raise RejectedCall(str(exc)) from None

    add_tools(server, calculate)
