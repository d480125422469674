"""What every tool module shares: the error for a wrong call, JSON answers, cheap registration."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools.function_tool import FunctionTool

# Parsed tool definitions by function, reused by every session's server (see `add_tools`).
_TEMPLATES: dict[str, FunctionTool] = {}


class RejectedCall(ToolError):
    """A tool call the model got wrong (a bad symbol, a future date, an order the rules refuse).

    Its message goes back to the model to read and recover from. It is an expected event, so it
    is logged at INFO rather than as a server error.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, log_level=logging.INFO)


def answer(payload: Any) -> str:
    """A tool's answer as compact JSON text (cheaper than fastmcp's structured conversion)."""
    return json.dumps(payload, separators=(",", ":"), default=str)


def add_tools(server: FastMCP, *functions: Callable[..., Any]) -> None:
    """Register session-bound tool functions on `server`.

    Every session defines the same functions as closures over its own context. Parsing a
    signature into a schema is the expensive part of registration, so it is done once per
    function and the parsed tool is reused with the new closure.
    """
    for function in functions:
        # A market may word a tool's description its own way: the text is part of the key.
        key = f"{function.__module__}.{function.__qualname__}:{function.__doc__}"
        template = _TEMPLATES.get(key)
        if template is None:
            template = FunctionTool.from_function(function, output_schema=None)
            _TEMPLATES[key] = template
        server.add_tool(template.model_copy(update={"fn": function}))
