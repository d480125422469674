"""A tool server's tools as LangChain tools, called in-process: what the agent loop works with.

The agent and its fastmcp server live in one process, so a call goes straight to the server's
`call_tool` (its argument validation and error masking included) instead of through an MCP client
session, whose JSON-RPC round trip over in-memory streams cost three times the call itself
(`benchmarks/price_tool_latency.py`). What the model sees is what `langchain-mcp-adapters` gives
over a session, byte for byte (`tests/test_tools_http.py` compares them), so recorded LLM calls
replay unchanged:
- a tool's name, description and JSON schema as the server lists them;
- its answer as text content blocks; a failed call as an error `ToolMessage` carrying the text of
  the exception, as the MCP SDK turns it into an error result.
Each call's latency is recorded by its tool call id, for the store's tool-call rows.
"""

from __future__ import annotations

import time
from typing import Any

from fastmcp import FastMCP
from fastmcp.tools import Tool
from langchain_core.messages.content import create_text_block
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from mcp.types import TextContent
from pydantic import PrivateAttr

Latencies = dict[str, list[float]]  # tool call id -> milliseconds, in call order


async def langchain_tools(server: FastMCP, latencies: Latencies) -> list[BaseTool]:
    """Every tool of `server`, as a LangChain tool that records its latency in `latencies`."""
    return [_langchain_tool(server, tool, latencies) for tool in await server.list_tools()]


def _langchain_tool(server: FastMCP, tool: Tool, latencies: Latencies) -> BaseTool:
    listed = tool.to_mcp_tool()

    async def call(**arguments: Any) -> tuple[list[dict[str, Any]], None]:
        try:
            result = await server.call_tool(tool.name, arguments)
        except Exception as exc:  # the MCP SDK answers any failure as an error result
            raise ToolException([create_text_block(text=str(exc))]) from exc
        return [_block(content) for content in result.content], None

    timed = TimedTool(
        name=listed.name,
        description=listed.description or "",
        args_schema=listed.inputSchema,
        coroutine=call,
        response_format="content_and_artifact",
        handle_tool_error=_error_blocks,
    )
    timed._latencies = latencies  # the conversation's own dict (a field would be copied)
    return timed


def _block(content: Any) -> dict[str, Any]:
    if not isinstance(content, TextContent):  # the trading tools answer text only
        raise ValueError(f"unsupported tool content {type(content).__name__}")
    return create_text_block(text=content.text)


def _error_blocks(error: ToolException) -> list[dict[str, Any]]:
    """The error `ToolMessage`'s content: the failure's text, as content blocks."""
    (blocks,) = error.args
    return blocks


class TimedTool(StructuredTool):
    """A structured tool that records how long each call took, by its tool call id."""

    _latencies: Latencies = PrivateAttr(default_factory=dict)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().ainvoke(input, config, **kwargs)
        finally:
            call_id = input.get("id") if isinstance(input, dict) else None
            if call_id:
                elapsed_ms = (time.perf_counter() - started) * 1000
                self._latencies.setdefault(call_id, []).append(elapsed_ms)
