"""Record every LLM call (fingerprint, response, tokens, latency, cost) and replay from the record.

`RecordingChatModel` wraps any LangChain chat model. Live, it forwards each request and keeps a
`LLMCallRecord`; in replay mode it answers from earlier records with zero network calls and fails
clearly when a request was never recorded.

A request is the model-day's transcript so far, so storing it whole repeats the conversation once
per call. An LLM's requests are kept whole all the same, as the exact evidence of what it was
sent; a built-in strategy's (`keep_requests=False`) keep only their message count and tools,
since its transcript (the `message` table) and the strategy itself reproduce them: that halves
the store's bytes per strategy model-day (benchmarks/store_bytes.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from agents.budget import RunBudget
from configs.loader import TokenPrice
from models.errors import ReplayMiss
from models.tables import LLMCall


@cache
def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth another attempt: the endpoint was busy, slow or unreachable."""
    import openai  # here, not at start-up: built-in strategies never need its 12 MiB

    return (
        openai.APITimeoutError,
        openai.APIConnectionError,
        openai.RateLimitError,
        openai.InternalServerError,
        httpx.TransportError,
        TimeoutError,
    )


# The first wait after a transient error, and the longest; each wait doubles, with jitter.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


class LLMCallRecord(BaseModel):
    """One request and its answer, as the store keeps it."""

    model: str
    fingerprint: str
    request: dict[str, Any]
    response: dict[str, Any]
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cost_usd: float | None = None
    replayed: bool = False


def _content_text(content: Any) -> Any:
    """Message content without the per-call ids LangChain adds to content blocks."""
    if isinstance(content, list):
        return [
            {k: v for k, v in block.items() if k != "id"} if isinstance(block, dict) else block
            for block in content
        ]
    return content


def canonical_message(message: BaseMessage) -> dict[str, Any]:
    """What identifies a message in a request: type, content, tool calls; no random ids."""
    canonical: dict[str, Any] = {"type": message.type, "content": _content_text(message.content)}
    if isinstance(message, AIMessage) and message.tool_calls:
        canonical["tool_calls"] = [
            {"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls
        ]
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id:
        canonical["tool_call_id"] = tool_call_id
    return canonical


def fingerprint(model: str, messages: Sequence[BaseMessage], tools: Sequence[Any]) -> str:
    """A stable hash of a request: the model, its messages and the tools offered."""
    payload = {
        "model": model,
        "messages": [canonical_message(m) for m in messages],
        "tools": sorted(json.dumps(t, sort_keys=True, default=str) for t in tools),
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def cost_of(tokens_in: int, tokens_out: int, price: TokenPrice | None) -> float | None:
    if price is None:
        return None
    return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6


class ReplayBook:
    """Recorded answers of one model, by request fingerprint (the latest record wins)."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.answers = answers or {}

    @classmethod
    def load(cls, session: Session, model: str) -> ReplayBook:
        query = select(LLMCall.fingerprint, LLMCall.response).where(LLMCall.model == model)
        return cls(dict(session.exec(query.order_by(LLMCall.id)).all()))


class RecordingChatModel(BaseChatModel):
    """A chat model that records every call, or replays recorded ones."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    inner: BaseChatModel | None = None
    mode: Literal["live", "replay"] = "live"
    replay_book: ReplayBook | None = None
    price: TokenPrice | None = None
    budget: RunBudget | None = None
    # False: a request is stored as its message count and tools (see the module's docstring).
    keep_requests: bool = True
    # How long a call is tried again through transient errors before the error is the day's,
    # and the first wait (doubling, with jitter, up to MAX_BACKOFF_S).
    outage_window_s: float = 0.0
    first_backoff_s: float = FIRST_BACKOFF_S
    records: list[LLMCallRecord] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "aitrader-recording"

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer `tools` (converted to OpenAI's schema, as the wrapped model expects them)."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        # Refused whatever the arguments: recording awaits the inner model, so only ainvoke works.
        raise NotImplementedError("the agent session runs asynchronously; use ainvoke")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        key = fingerprint(self.model_name, messages, tools)
        request = {
            "messages": [message_to_dict(m) for m in messages] if self.keep_requests else None,
            "message_count": len(messages),
            "tools": [t.get("function", {}).get("name") for t in tools],
        }
        if self.mode == "replay":
            return self._replay(key, request)
        if self.budget is not None:
            self.budget.check()
        started = time.perf_counter()
        result = await self._through_outages(messages, stop, run_manager, **kwargs)
        latency_ms = (time.perf_counter() - started) * 1000
        message = result.generations[0].message
        usage = getattr(message, "usage_metadata", None) or {}
        tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cost = cost_of(tokens_in, tokens_out, self.price)
        if self.budget is not None:
            self.budget.spend(tokens_in + tokens_out, cost or 0.0)
        self.records.append(
            LLMCallRecord(
                model=self.model_name,
                fingerprint=key,
                request=request,
                response={"message": message_to_dict(message)},
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                latency_ms=latency_ms,
                cost_usd=cost,
            )
        )
        return result

    async def _through_outages(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        **kwargs: Any,
    ) -> ChatResult:
        """The inner model's answer, asked again with backoff through transient errors (a rate
        limit, a 5xx, a timeout, an outage) for up to `outage_window_s`: one bad minute at the
        provider does not cost a live day. Nothing is recorded until an answer comes."""
        assert self.inner is not None, "a live RecordingChatModel needs an inner model"
        deadline = time.monotonic() + self.outage_window_s
        wait = self.first_backoff_s
        while True:
            try:
                return await self.inner._agenerate(
                    messages, stop=stop, run_manager=run_manager, **kwargs
                )
            except Exception as exc:
                left = deadline - time.monotonic()
                if not isinstance(exc, transient_errors()) or left <= 0:
                    raise
                await asyncio.sleep(min(wait * random.uniform(0.5, 1.0), left))
                wait = min(wait * 2, MAX_BACKOFF_S)

    def _replay(self, key: str, request: dict[str, Any]) -> ChatResult:
        answer = (self.replay_book.answers if self.replay_book else {}).get(key)
        if answer is None:
            raise ReplayMiss(
                f"replay: no recorded answer of {self.model_name} for this request "
                f"(fingerprint {key[:12]}); run it live once to record it"
            )
        (message,) = messages_from_dict([answer["message"]])
        self.records.append(
            LLMCallRecord(
                model=self.model_name,
                fingerprint=key,
                request=request,
                response=answer,
                replayed=True,
            )
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
