"""`aitrader demo-llm`: a local OpenAI-compatible endpoint, so the LLM path runs with no key.

It answers `POST /v1/chat/completions` as an LLM would: it reads the conversation it is sent,
decides with a built-in strategy (the model it is asked for: `demo-momentum`, `demo-equal-weight`
or `demo-random`), and replies with tool calls or a final text, counting tokens (about four
characters each). Everything else is the real path: langchain-openai's client, the MCP tools,
token accounting, recording and `--replay`. `configs/demo-llm.yaml` trades against it.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage, convert_to_messages
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEMO_MODELS = {
    "demo-momentum": "momentum",
    "demo-equal-weight": "equal-weight",
    "demo-random": "random",
}
CHARACTERS_PER_TOKEN = 4


def demo_app() -> Starlette:
    """The endpoint: `GET /v1/models` and `POST /v1/chat/completions`."""

    async def models(request: Request) -> JSONResponse:
        data = [{"id": name, "object": "model", "owned_by": "aitrader"} for name in DEMO_MODELS]
        return JSONResponse({"object": "list", "data": data})

    async def completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            strategy = DEMO_MODELS[body.get("model")]
            messages = convert_to_messages(body["messages"])
        except (ValueError, KeyError, TypeError) as exc:
            known = ", ".join(DEMO_MODELS)
            message = f"a chat-completions request for one of {known}, with messages: {exc!r}"
            return JSONResponse({"error": {"message": message}}, status_code=400)
        answer = _decide(strategy, body["model"], messages)
        return JSONResponse(_completion(body, answer))

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", completions, methods=["POST"]),
        ]
    )


def _decide(strategy: str, model: str, messages: list) -> AIMessage:
    """What the built-in strategy does next in this conversation."""
    from agents.strategies import build_strategy

    answer = build_strategy(strategy, model, {}).invoke(messages)
    assert isinstance(answer, AIMessage)
    return answer


def _completion(body: dict[str, Any], answer: AIMessage) -> dict[str, Any]:
    """`answer` as an OpenAI chat completion, with its token usage."""
    calls = [
        {
            "id": call["id"] or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in answer.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if calls:
        message["tool_calls"] = calls
    prompt = sum(len(json.dumps(m)) for m in body["messages"]) // CHARACTERS_PER_TOKEN
    completion = max(1, len(json.dumps(message)) // CHARACTERS_PER_TOKEN)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
