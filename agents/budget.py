"""A run's spending limit on LLM calls, shared by its model-days."""

from __future__ import annotations

import threading

from pydantic import BaseModel

from models.errors import BudgetExhausted


class BudgetState(BaseModel):
    spent_usd: float
    spent_tokens: int
    limit_usd: float | None
    limit_tokens: int | None


class RunBudget:
    """Counts tokens and dollars across a run's concurrent model-days; thread-safe."""

    def __init__(
        self,
        limit_usd: float | None = None,
        limit_tokens: int | None = None,
        spent_usd: float = 0.0,
        spent_tokens: int = 0,
    ) -> None:
        self.limit_usd = limit_usd
        self.limit_tokens = limit_tokens
        self._spent_usd = spent_usd
        self._spent_tokens = spent_tokens
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._exhausted()

    def _exhausted(self) -> bool:
        over_usd = self.limit_usd is not None and self._spent_usd >= self.limit_usd
        over_tokens = self.limit_tokens is not None and self._spent_tokens >= self.limit_tokens
        return over_usd or over_tokens

    def check(self) -> None:
        """Raise `BudgetExhausted` if nothing more may be spent."""
        with self._lock:
            if self._exhausted():
                raise BudgetExhausted(
                    f"run budget spent: ${self._spent_usd:.4f} of "
                    f"{'$' + format(self.limit_usd, '.4f') if self.limit_usd else 'no $ limit'}, "
                    f"{self._spent_tokens:,} of {self.limit_tokens or 'unlimited'} tokens"
                )

    def spend(self, tokens: int, usd: float) -> None:
        with self._lock:
            self._spent_tokens += tokens
            self._spent_usd += usd

    def state(self) -> BudgetState:
        with self._lock:
            return BudgetState(
                spent_usd=self._spent_usd,
                spent_tokens=self._spent_tokens,
                limit_usd=self.limit_usd,
                limit_tokens=self.limit_tokens,
            )
