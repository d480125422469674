"""MCP tool servers (fastmcp) bound to one session context: prices, news, trade and math.

Tools are `async def` although their work is synchronous: fastmcp runs sync tools in a worker
thread, and that hop cost more than the lookup itself. Each tool's work is in-memory and short.
"""

from __future__ import annotations

import logging

from fastmcp import FastMCP

from agent_tools.context import SessionContext
from agent_tools.servers import math, news, prices, trade

# fastmcp logs every tool error at INFO and above on its own handler; a rejected order is part of
# a normal session, so only its warnings reach the console.
logging.getLogger("fastmcp.server.server").setLevel(logging.WARNING)

TOOL_GROUPS = {"prices": prices, "news": news, "trade": trade, "math": math}


def build_server(context: SessionContext, groups: tuple[str, ...] = tuple(TOOL_GROUPS)) -> FastMCP:
    """One MCP server holding the tools of `groups`, every one bound to `context`."""
    unknown = set(groups) - set(TOOL_GROUPS)
    if unknown:
        raise ValueError(f"unknown tool groups {sorted(unknown)}; known: {sorted(TOOL_GROUPS)}")
    server = FastMCP(
        name=f"aitrader-{context.model}-{context.at:%Y%m%d%H%M}",
        instructions=f"Trading tools for {context.model} on {context.day}.",
        mask_error_details=True,  # only ToolError messages reach the model, never internals
        # Arguments are validated by pydantic from the type hints; the extra JSON-schema pass of
        # the MCP SDK (and of the client on outputs) cost more than half of every call.
        strict_input_validation=False,
    )
    for group in groups:
        TOOL_GROUPS[group].register(server, context)
    return server
