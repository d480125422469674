"""The model-day task: one model's trading day, retried on transient failures, cached by state."""

import hashlib
from datetime import date, timedelta

from prefect import task
from prefect.tasks import exponential_backoff

from agents.session import ModelDayResult, run_model_day
from models.errors import TransientModelDayError
from tasks.runtime import lookup


async def retry_only_transient(task, task_run, state) -> bool:
    """Retry a model-day only when it failed for a transient reason."""
    try:
        await state.aresult()
    except TransientModelDayError:
        return True
    except Exception:
        return False
    return False


def model_day_cache_key(context, parameters) -> str:
    """Portfolio (model config, prompt and code version), day, starting book, and store."""
    parts = [parameters[name] for name in ("portfolio", "day", "start_state", "store")]
    return "model-day-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


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
    model: str, day: date, portfolio: str, start_state: str, store: str, run_key: str
) -> ModelDayResult:
    """Run the model-day (or return it if already completed); transient failures raise to retry.

    The parameters are small on purpose: Prefect walks every task input on every call.
    """
    resources = lookup(run_key)
    request = resources.request(model, day)
    result = await run_model_day(
        resources.engine,
        request,
        resources.prices,
        budget=resources.budget,
        news=resources.news,
    )
    if result.status == "failed" and result.transient:
        raise TransientModelDayError(result.error)
    return result
