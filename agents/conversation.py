"""The conversation of one model-day: the chat model works through the MCP tools until it is done.

It persists nothing: what was said, the tools' latencies and the LLM calls come back as one
`Conversation`, also when the day times out or fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp import Client
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_mcp_adapters.tools import load_mcp_tools
from langgraph.errors import GraphRecursionError

from agent_tools.context import SessionContext
from agent_tools.servers import build_server
from agents.prompt import FINISH_SIGNAL, first_message, system_prompt
from agents.recording import RecordingChatModel
from agents.types import Conversation
from configs.loader import AgentConfig

CONTINUE_PROMPT = (
    f"Continue. Act through the tools; when you are done, answer with {FINISH_SIGNAL}."
)


async def converse(
    context: SessionContext, agent_config: AgentConfig, model: RecordingChatModel
) -> Conversation:
    """Let the model work until it says it is done, runs out of steps or of time.

    A timeout or an error ends the conversation with `error` set; what was said until then is
    kept, because a failed day's messages are what explain it.
    """
    conversation = Conversation(
        system=system_prompt(context), sessions=[context.at] if context.hourly else []
    )
    try:
        async with asyncio.timeout(agent_config.day_timeout_s):
            conversation.finished = await _talk(context, agent_config, model, conversation)
    except Exception as exc:
        conversation.error = exc
    conversation.records = list(model.records)
    return conversation


async def _talk(
    context: SessionContext,
    agent_config: AgentConfig,
    model: RecordingChatModel,
    conversation: Conversation,
) -> bool:
    """The tool loop; fills `conversation` as it goes and says whether the model finished."""
    transcript = conversation.transcript
    server = build_server(context, tuple(agent_config.tool_groups))
    async with Client(server) as client:
        tools = await load_mcp_tools(
            client.session, tool_interceptors=[_tool_timer(conversation.latencies)]
        )
        agent = create_agent(model, tools, system_prompt=conversation.system)
        transcript.append(HumanMessage(first_message(context)))
        while len(model.records) < agent_config.max_steps:
            steps_left = agent_config.max_steps - len(model.records)
            try:
                async for state in agent.astream(
                    {"messages": list(transcript)},
                    {"recursion_limit": 2 * steps_left + 1},
                    stream_mode="values",
                ):
                    transcript[:] = state["messages"]
            except GraphRecursionError:
                return False  # out of steps: the trades made so far stand
            last = transcript[-1]
            if isinstance(last, AIMessage) and last.invalid_tool_calls:
                transcript.extend(_malformed_call_answers(last))
                continue
            if FINISH_SIGNAL in _text(last):
                return True
            transcript.append(HumanMessage(CONTINUE_PROMPT))
    return False


def _tool_timer(
    latencies: dict[str, list[float]],
) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    """A tool interceptor recording each call's latency in milliseconds, by tool_call_id."""

    async def time_tool(call: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        try:
            return await handler(call)
        finally:
            tool_call_id = getattr(call.runtime, "tool_call_id", None)
            if tool_call_id:
                elapsed_ms = (time.perf_counter() - started) * 1000
                latencies.setdefault(tool_call_id, []).append(elapsed_ms)

    return time_tool


def _malformed_call_answers(message: AIMessage) -> list[ToolMessage]:
    """Tell the model which of its tool calls could not be parsed, so it can send them again."""
    return [
        ToolMessage(
            content=(
                f"error: the arguments of your {call.get('name') or 'tool'} call are not valid "
                f"JSON ({call.get('error') or 'unparseable'}); send the call again"
            ),
            tool_call_id=call.get("id") or f"invalid-{index}",
            status="error",
        )
        for index, call in enumerate(message.invalid_tool_calls)
    ]


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)
