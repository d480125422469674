"""The model-day task: one model's trading day, retried on transient failures, cached by state."""

import hashlib
from datetime import date, timedelta
from typing import Any

from prefect import task
from prefect.tasks import exponential_backoff
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.types import ModelDayResult
from models import clock
from models.engine import store_identity
from models.errors import TransientModelDayError
from models.ledger import day_start
from tasks.runtime import RunResources


async def retry_only_transient(task, task_run, state) -> bool:
    """Retry a model-day only when it failed for a transient reason."""
    try:
        await state.aresult()
    except TransientModelDayError:
        return True
    except Exception:
        return False
    return False


class ModelDayKey(BaseModel):
    """What decides a model-day's outcome, so a cached result is reused only for the same inputs.

    The portfolio key carries the model's config, the prompt and the agent code version; the
    starting book's hash makes a day re-run from another book a new task; the store's identity
    (made when the store is created, not its URL) keeps two stores' caches apart, also a store
    deleted and made again at the same path.
    """

    portfolio: str
    day: date
    start_state: str
    store: str

    def task_inputs(self) -> tuple[date, str, str, str]:
        """The task's parameters after `model`, in its signature's order."""
        return self.day, self.portfolio, self.start_state, self.store

    def cache_key(self) -> str:
        parts = (self.portfolio, self.day, self.start_state, self.store)
        return "model-day-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def model_day_key(engine: Engine, portfolio: str, day: date, initial_cash: float) -> ModelDayKey:
    """The cache inputs of a portfolio's day, from the book it would start from."""
    with Session(engine) as session:
        start = day_start(session, portfolio, day, initial_cash)
        store = store_identity(session)
    # A day in progress trades more as its day goes on: it is never answered from the cache.
    resumed = f"|{', '.join(start.traded)}|{clock.now().isoformat()}" if start.traded else ""
    state = start.book.model_dump_json() + resumed
    return ModelDayKey(
        portfolio=portfolio,
        day=day,
        start_state=hashlib.sha256(state.encode()).hexdigest(),
        store=store,
    )


def model_day_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect's cache key of a model-day task run, from its parameters (not its run's
    resources: another run may reuse the day)."""
    return ModelDayKey.model_validate(parameters).cache_key()


@task(
    name="model-day",
    task_run_name="{model}@{day}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_only_transient,
    cache_key_fn=model_day_cache_key,
    cache_expiration=timedelta(days=90),
    tags=["model-day"],
)
async def simulate_model_day(
    model: str, day: date, portfolio: str, start_state: str, store: str, resources: RunResources
) -> ModelDayResult:
    """Run the model-day (or return it if already completed); transient failures raise to retry.

    `model` is the model trial's label (its name, or `name#t<trial>` after trial 1), so task runs
    read `random#2@2025-01-02`. The parameters are small on purpose: Prefect walks every task
    input on every call (`resources` it passes as is, see tasks/runtime.py).
    """
    request = resources.request(model, day)
    # Imported here: the agent loop (LangChain, MCP) is a second of a flow run's start-up that
    # a run refused before its first model-day never needs.
    from agents.session import run_model_day

    result = await run_model_day(
        resources.engine,
        request,
        resources.prices,
        budget=resources.budget,
        news=resources.news,
        holder_stopped=resources.holder_stopped,
    )
    if result.status == "failed" and result.transient:
        raise TransientModelDayError(result.error)
    return result
