"""The refresh task: bring a config's market up to now before a daily catch-up plans its days."""

from prefect import task
from prefect.tasks import exponential_backoff
from sqlmodel import Session

from configs.loader import load_config
from market_data.refresh import RefreshReport, refresh_market
from models import clock
from models.engine import get_engine
from models.errors import AlphaVantageError


async def retry_source_errors(task, task_run, state) -> bool:
    """Retry when the source failed (network, outage); not a config or store problem. A rate
    limit is no error here: the refresh stores what it got and names the stale symbols."""
    try:
        await state.aresult()
    except AlphaVantageError:
        return True
    except Exception:
        return False
    return False


@task(
    name="refresh-prices",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=retry_source_errors,
)
def refresh_prices(config: str | None) -> RefreshReport:
    """Fetch the config's market up to now through its source (see market_data/refresh.py)."""
    settings = load_config(config)
    with Session(get_engine()) as session:
        return refresh_market(session, settings, clock.now())
