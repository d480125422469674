"""News tool: stored items published before today's open, never later."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import SessionContext
from agent_tools.servers.tooling import add_tools, answer


def register(server: FastMCP, context: SessionContext) -> None:
    """Add the news tool, bound to `context`, to `server`."""

    async def search_news(
        query: Annotated[str, Field(description="Words to look for; empty for the latest")] = "",
        tickers: Annotated[list[str] | None, Field(description="Only items on these")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> str:
        """News published before today's market open, newest first."""
        cutoff = context.cutoff
        items = (
            context.news.search(cutoff, query=query, tickers=tickers or (), limit=limit)
            if context.news is not None
            else []
        )
        return answer(
            {
                "published_before": cutoff.isoformat(timespec="minutes"),
                "items": [item.model_dump() for item in items],
            }
        )

    if context.hourly:  # daily sessions keep their recorded wording
        search_news.__doc__ = "News published before this session's open, newest first."
    add_tools(server, search_news)
