"""`StrategyChatModel`: the LangChain side of a strategy; a subclass only decides `plan(view)`."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, Field

from agents.prompt import FINISH_SIGNAL
from agents.strategies.observations import (
    BUY,
    GET_PORTFOLIO,
    GET_SNAPSHOT,
    SELL,
    Book,
    DayView,
    read_day,
    todays_messages,
)
from models.errors import ObservationError

# A model-day needs four calls; a conversation longer than this is not one the strategy led.
MAX_STEPS = 8

Order = tuple[str, int | float]  # (symbol, shares or coin amount)


class StrategyParams(BaseModel):
    """A strategy's parameters, from the config's `params` (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Plan:
    """The day's decision: sells now, then buys sized on the book the sells leave."""

    note: str
    sells: list[Order] = field(default_factory=list)
    buys: Callable[[Book], list[Order]] = lambda book: []


def _tool_name(tool: Any) -> str | None:
    """The name of a tool as `bind_tools` may get it: an OpenAI schema, a dict or a tool object."""
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict) and function.get("name"):
            return str(function["name"])
        return str(tool["name"]) if tool.get("name") else None
    name = getattr(tool, "name", None) or getattr(tool, "__name__", None)
    return str(name) if name else None


class StrategyChatModel(BaseChatModel):
    """A chat model whose answers a rule-based strategy computes from the tools' answers.

    The agent session drives it exactly like an LLM: it answers with tool calls, reads the market
    only from the tools' answers and ends the model-day with a plain-text summary holding
    `FINISH_SIGNAL`. It keeps no state between calls: every answer is a pure function of the
    conversation since the last human message, so the same conversation always gets the same
    answer (tool-call ids included) and a recorded session replays exactly.

    A model-day runs in at most four calls: observe (`observe_tools`); sell (every sell of the
    plan, in one message: sells do not depend on each other); buy (every buy, sized on the cash
    the sell answers reported, or `get_portfolio`'s when there were no sells, in one message);
    finish (what was done and why). Steps with nothing to do are skipped. A rejected order is
    never retried: the strategy moves on and reports it in the summary.

    A strategy overrides `plan` (and `_observe_args` when its observations take arguments);
    reading the answers and writing the messages stay here.
    """

    strategy: ClassVar[str]
    observe_tools: ClassVar[tuple[str, ...]] = (GET_PORTFOLIO, GET_SNAPSHOT)

    model_name: str = Field(default="strategy", min_length=1)
    trial: int = Field(default=1, ge=1, description="trial of a repeated backtest; see `plan`")
    tool_names: tuple[str, ...] | None = None  # None until bind_tools: assume every tool exists
    params: StrategyParams

    @property
    def _llm_type(self) -> str:
        return f"aitrader-strategy-{self.strategy}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "strategy": self.strategy,
            "params": self.params.model_dump(),
        }

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> StrategyChatModel:
        """A copy that knows the names of the tools it may call (it needs nothing else)."""
        names = tuple(name for name in (_tool_name(t) for t in tools) if name)
        return self.model_copy(update={"tool_names": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        # The answer is quick and pure: compute it inline rather than in the worker thread that
        # LangChain's default `_agenerate` would hand `_generate` to.
        return self._generate(messages)

    @abstractmethod
    def plan(self, view: DayView) -> Plan:
        """The day's sells and buys, from what the tools answered."""

    def _observe_args(self, tool: str) -> dict[str, Any]:
        """The arguments of the observation call to `tool`."""
        return {}

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message of the model-day whose conversation is `messages`."""
        today = todays_messages(messages)
        mine = [m for m in today if isinstance(m, AIMessage)]
        step = len(mine)
        if step == 0:
            missing = [t for t in self.observe_tools if not self._has_tool(t)]
            if missing:
                return self._finish(f"cannot see the market: tools {missing} are not offered")
            return self._calls(
                step,
                [(name, self._observe_args(name)) for name in self.observe_tools],
                "Reading the portfolio and today's prices.",
            )
        if step >= MAX_STEPS:
            return self._finish("stopped: the session ran longer than a strategy day should")
        answers = {m.tool_call_id: m for m in today if isinstance(m, ToolMessage)}
        calls = [(call, answers.get(call["id"])) for ai in mine for call in ai.tool_calls]
        try:
            view = read_day(calls, self.observe_tools)
        except ObservationError as exc:
            return self._finish(f"no trade today: could not read the market ({exc})")
        plan = self.plan(view)
        sold = any(call["name"] == SELL for call, _ in calls)
        bought = any(call["name"] == BUY for call, _ in calls)
        if not sold and not bought and plan.sells:
            if self._has_tool(SELL):
                return self._orders(step, SELL, plan.sells, f"Selling first: {plan.note}")
            plan.note += "; the sell tool is not offered, so nothing was sold"
        if not bought:
            buys = plan.buys(view.book or Book(view.cash, dict(view.positions)))
            if buys:
                if self._has_tool(BUY):
                    return self._orders(step, BUY, buys, f"Buying: {plan.note}")
                plan.note += "; the buy tool is not offered, so nothing was bought"
        return self._finish(self._summary(view, plan))

    def _has_tool(self, name: str) -> bool:
        return self.tool_names is None or name in self.tool_names

    # Messages ---------------------------------------------------------------------------------

    def _calls(self, step: int, calls: list[tuple[str, dict[str, Any]]], text: str) -> AIMessage:
        # Ids come from the step and position only, so a replayed day asks the very same calls.
        tool_calls = [
            {"name": name, "args": args, "id": f"{name}-{step}-{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls)
        ]
        return self._message(text, tool_calls)

    def _orders(self, step: int, side: str, orders: list[Order], text: str) -> AIMessage:
        calls = [(side, {"symbol": symbol, "shares": shares}) for symbol, shares in orders]
        return self._calls(step, calls, text)

    def _finish(self, text: str) -> AIMessage:
        return self._message(f"{text}\n{FINISH_SIGNAL}", [])

    def _message(self, text: str, tool_calls: list[dict[str, Any]]) -> AIMessage:
        return AIMessage(
            content=text,
            tool_calls=tool_calls,
            usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            },
        )

    def _summary(self, view: DayView, plan: Plan) -> str:
        lines = [f"{self.strategy} on {view.day}: {plan.note}."]
        done = [o for o in view.orders if o.ok]
        failed = [o for o in view.orders if not o.ok]
        if done:
            lines.append(
                "Filled: " + ", ".join(f"{o.side} {o.shares} {o.symbol}" for o in done) + "."
            )
        else:
            lines.append("No trade today.")
        if failed:
            lines.append(
                "Rejected (not retried): "
                + "; ".join(f"{o.side} {o.shares} {o.symbol}: {o.message}" for o in failed)
                + "."
            )
        if view.book is not None:
            lines.append(f"Cash now {view.book.cash:,.2f}.")
        return "\n".join(lines)
