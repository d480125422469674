"""The backtest's deployments, served from this process: a daily catch-up and a manual trigger."""

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from configs.loader import load_config
from configs.markets import DEFAULT_MARKET, load_market
from flows.backtest import backtest
from models.errors import ServeConflict

# The default market's (configs/markets.yaml): 09:35 New York time on weekdays, just after the
# open. prefect.yaml and the Windmill schedule hold the same (tests/test_schedule.py).
DAILY_CRON = load_market(DEFAULT_MARKET).schedule
TIMEZONE = load_market(DEFAULT_MARKET).timezone


def deployments(config: str | None = None, paused_schedule: bool = False) -> list:
    """The daily catch-up (cron, at the config's market's time, refreshing its prices first) and
    the manual deployment of the backtest flow.

    One run at a time per deployment; a second trigger waits for the first (ENQUEUE). The store
    refuses to simulate a model-day twice even without this limit.
    """
    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
    )
    parameters = {"config": config} if config else {}
    market = load_config(config).market.definition
    schedule = Cron(market.schedule, timezone=market.timezone, active=not paused_schedule)
    return [
        backtest.to_deployment(
            name="daily",
            schedules=[schedule],
            parameters={**parameters, "refresh": True},
            concurrency_limit=one_at_a_time,
            tags=["aitrader", "daily"],
            description="Fetch the newest prices, then catch every enabled model up to them.",
        ),
        backtest.to_deployment(
            name="manual",
            parameters=parameters,
            concurrency_limit=one_at_a_time,
            tags=["aitrader", "manual"],
            description="A backtest over the given dates (or a catch-up without dates).",
        ),
    ]


def serve_deployments(config: str | None = None, paused_schedule: bool = False) -> None:
    """Register both deployments and run their flow runs in this process until stopped.

    Refused when a deployment of the same name is deployed to a work pool: serving would take it
    over, so the pool's worker and this process would each pick up the other's runs.
    """
    from prefect import serve

    served = deployments(config, paused_schedule)
    check_no_pool_deployment([f"{backtest.name}/{d.name}" for d in served])
    serve(*served)


def check_no_pool_deployment(names: list[str]) -> None:
    """Raise ServeConflict if any of `names` is deployed to a work pool on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    pooled = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if deployment.work_pool_name:
                pooled.append(f"{name} (work pool {deployment.work_pool_name})")
    if pooled:
        raise ServeConflict(
            f"{', '.join(pooled)} already deployed to a work pool: serving the same names would "
            "make this process and the pool's worker take each other's runs. Trigger the pool "
            "deployments instead, or remove them first (prefect deployment delete NAME)"
        )
