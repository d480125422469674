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

import inspect
import time
from typing import Any, get_type_hints

from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware
from fastmcp.tools import Tool
from langchain_core.messages.content import create_text_block
from langchain_core.tools import BaseTool, ToolException
from mcp.types import TextContent
from pydantic import PrivateAttr

Latencies = dict[str, list[float]]  # tool call id -> milliseconds, in call order
Blocks = list[dict[str, Any]]  # a ToolMessage's content: text content blocks

# The hooks a middleware can take a tool call through; when none of a server's middleware
# overrides them (fastmcp's default only rewrites listed schemas), the chain only passes the
# call on, so it is skipped: building it cost a third of fastmcp's share of every call.
_CALL_HOOKS = ("__call__", "_dispatch_handler", "on_message", "on_request", "on_call_tool")


async def langchain_tools(server: FastMCP, latencies: Latencies) -> list[BaseTool]:
    """Every tool of `server`, as a LangChain tool that records its latency in `latencies`."""
    run_middleware = any(_handles_calls(middleware) for middleware in server.middleware)
    return [
        _langchain_tool(server, tool, latencies, run_middleware=run_middleware)
        for tool in await server.list_tools()
    ]


def _handles_calls(middleware: Middleware) -> bool:
    """Whether `middleware` does anything to a tool call beyond passing it on."""
    return any(
        getattr(type(middleware), hook) is not getattr(Middleware, hook) for hook in _CALL_HOOKS
    )


def _langchain_tool(
    server: FastMCP, tool: Tool, latencies: Latencies, *, run_middleware: bool
) -> BaseTool:
    listed = tool.to_mcp_tool()
    in_process = InProcessTool(
        name=listed.name,
        description=listed.description or "",
        args_schema=listed.inputSchema,
        response_format="content_and_artifact",
        handle_tool_error=_error_blocks,
    )
    in_process._server = server
    in_process._run_middleware = run_middleware
    in_process._latencies = latencies  # the conversation's own dict (a field would be copied)
    return in_process


def _block(content: Any) -> dict[str, Any]:
    if not isinstance(content, TextContent):  # the trading tools answer text only
        raise ValueError(f"unsupported tool content {type(content).__name__}")
    return create_text_block(text=content.text)


def _error_blocks(error: ToolException) -> Blocks:
    """The error `ToolMessage`'s content: the failure's text, as content blocks."""
    (blocks,) = error.args
    return blocks


# A `BaseTool` rather than a `StructuredTool` around a coroutine: LangChain resolves the type hints
# and signature of both `_arun` and the coroutine on every call, a fifth of the call.
class InProcessTool(BaseTool):
    """A fastmcp server's tool as a LangChain tool, called in-process and timed by call id."""

    _server: FastMCP = PrivateAttr()
    _run_middleware: bool = PrivateAttr(default=True)
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

    async def _arun(self, **arguments: Any) -> tuple[Blocks, None]:
        """Call the server's tool; any failure is an error `ToolMessage` with its text."""
        try:
            result = await self._server.call_tool(
                self.name, arguments, run_middleware=self._run_middleware
            )
        except Exception as exc:  # the MCP SDK answers any failure as an error result
            raise ToolException([create_text_block(text=str(exc))]) from exc
        return [_block(content) for content in result.content], None

    def _run(self, **arguments: Any) -> tuple[Blocks, None]:
        """Not supported: the server's tools are coroutines, called through `ainvoke`."""
        raise NotImplementedError("in-process MCP tools are called asynchronously (ainvoke)")


# LangChain reads `_arun`'s signature and type hints on every call (to pass `run_manager` or
# `config` if it takes them): resolved once here, each call reads them instead of parsing the
# annotations' text again.
InProcessTool._arun.__annotations__ = get_type_hints(InProcessTool._arun)
InProcessTool._arun.__signature__ = inspect.signature(InProcessTool._arun)
