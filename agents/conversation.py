"""The conversation of one model-day: the chat model works through the tools until it is done.

It persists nothing: what was said, the tools' latencies and the LLM calls come back as one
`Conversation`, also when the day times out or fails.
"""

from __future__ import annotations

import asyncio

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from agent_tools.context import SessionContext
from agent_tools.langchain_tools import langchain_tools
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
    tools = await langchain_tools(server, conversation.latencies)
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
