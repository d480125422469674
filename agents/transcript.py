"""A session's conversation as store rows: messages (with reasoning) and tool calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from models.tables import Message, ToolCall

ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def plain_text(content: Any) -> str:
    """Message content as text: strings as they are, text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "\n".join(parts)
    return str(content)


def reasoning_of(message: BaseMessage) -> str | None:
    """A model's visible reasoning, where the endpoint returns it (reasoning_content or blocks)."""
    reasoning = message.additional_kwargs.get("reasoning_content")
    if reasoning:
        return str(reasoning)
    if isinstance(message.content, list):
        blocks = [
            str(b.get("reasoning") or b.get("text") or "")
            for b in message.content
            if isinstance(b, dict) and b.get("type") in ("reasoning", "thinking")
        ]
        return "\n".join(blocks) or None
    return None


def message_rows(
    model_day_id: int, system: str | None, transcript: list[BaseMessage]
) -> Iterator[Message]:
    """One `Message` per message of the conversation, the system prompt first."""
    seq = 0
    if system is not None:
        yield Message(model_day_id=model_day_id, seq=seq, role="system", content=system)
    for message in transcript:
        seq += 1
        content = plain_text(message.content)
        if isinstance(message, AIMessage) and message.tool_calls and not content:
            content = "calls " + ", ".join(c["name"] for c in message.tool_calls)
        yield Message(
            model_day_id=model_day_id,
            seq=seq,
            role=ROLES.get(message.type, message.type),
            content=content,
            reasoning=reasoning_of(message),
        )


def tool_call_rows(
    model_day_id: int, transcript: list[BaseMessage], latencies: dict[str, list[float]]
) -> Iterator[ToolCall]:
    """One `ToolCall` per call the model made, with the answer it got and how long it took.

    A call is matched with the answers between its message and the model's next one, and with
    the next unclaimed latency of its id: an hourly day holds several sessions, and a built-in
    strategy reuses its call ids in each.
    """
    unclaimed = {tool_call_id: iter(times) for tool_call_id, times in latencies.items()}
    seq = 0
    for index, message in enumerate(transcript):
        if not isinstance(message, AIMessage):
            continue
        answers: dict[str, ToolMessage] = {}
        for later in transcript[index + 1 :]:
            if isinstance(later, AIMessage):
                break
            if isinstance(later, ToolMessage):
                answers.setdefault(later.tool_call_id, later)
        # Only well-formed calls that were answered reached a tool and were timed.
        calls = [(c, True) for c in message.tool_calls]
        calls += [(c, False) for c in message.invalid_tool_calls]
        for call, well_formed in calls:
            seq += 1
            answer = answers.get(call.get("id") or "")
            timings = unclaimed.get(call.get("id") or "", iter(()))
            latency = next(timings, 0.0) if well_formed and answer is not None else 0.0
            args = call.get("args")
            yield ToolCall(
                model_day_id=model_day_id,
                seq=seq,
                tool=call.get("name") or "?",
                arguments=args if isinstance(args, dict) else {"raw": args},
                result=plain_text(answer.content) if answer else "",
                is_error=answer is None or answer.status == "error",
                latency_ms=latency,
            )
