"""The error a tool answers when the model asked for something it cannot have."""

from __future__ import annotations

import logging

from fastmcp.exceptions import ToolError


class RejectedCall(ToolError):
    """A tool call the model got wrong (a bad symbol, a future date, an order the rules refuse).

    Its message goes back to the model to read and recover from. It is an expected event, so it
    is logged at INFO rather than as a server error.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, log_level=logging.INFO)
