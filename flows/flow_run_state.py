"""What Prefect shows as a backtest flow run's state: its progress while it runs, and `Crashed`
for a run whose process died.

A flow run's state message can only change with a state transition, and Prefect's global
policy (`IncrementFlowRunCount`) counts every transition into Running as a new run, which would
make a 60-day backtest look like 60 attempts and spend its retries. Prefect itself re-enters
Running without counting a run when a paused flow resumes, marked by the run's `resuming` flag;
a progress message is the same kind of transition (the same attempt, going on), so it sets that
flag first. The server clears it again on the transition (`RemoveResumingIndicator`).

Those are three API calls, and a busy server (a SQLite one answers 503 under load, and the
client backs off for seconds) must neither hold up the backtest nor crowd its own calls, so
`StateProgress` sends them from a background task, every few seconds, always the latest message.
"""

import asyncio
import contextlib
import uuid

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectException
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Crashed, Running


async def show_progress(message: str) -> None:
    """Put `message` in this flow run's Running state, where the UI and `prefect flow-run inspect`
    show it; a run that is not running (cancelling, say) is left alone."""
    if not flow_run.id:
        return
    try:
        async with get_client() as client:
            current = await client.read_flow_run(uuid.UUID(flow_run.id))
            if current.state is None or not current.state.is_running():
                return
            policy = current.empirical_policy.model_copy(update={"resuming": True})
            await client.update_flow_run(current.id, empirical_policy=policy)
            # Not forced: the server still refuses it if the run was cancelled meanwhile.
            await client.set_flow_run_state(current.id, Running(message=message))
    except (httpx.HTTPError, PrefectException) as exc:
        # Progress is a courtesy: a busy API must not fail the backtest.
        get_run_logger().debug(f"progress not shown in the flow run's state: {exc}")


class StateProgress:
    """Shows the latest progress message in this flow run's state without making the flow wait,
    at most once every `interval_s` (the last message is shown on `close` whatever the wait)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._latest: str | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def show(self, message: str) -> None:
        """Queue `message`, replacing one not yet sent."""
        self._latest = message
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._latest is not None:
            message, self._latest = self._latest, None
            await show_progress(message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.interval_s)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Send the last message now (waiting at most `timeout_s`), then stop sending."""
        self._closing.set()
        if self._sender is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._sender, timeout_s)


async def mark_flow_run_crashed(flow_run_id: str, message: str) -> None:
    """Tell Prefect a run's process died, so its UI does not show the run as running forever."""
    with contextlib.suppress(Exception):  # another server's run, or already final: nothing to do
        async with get_client() as client:
            dead = await client.read_flow_run(uuid.UUID(flow_run_id))
            if dead.state is not None and not dead.state.is_final():
                await client.set_flow_run_state(dead.id, Crashed(message=message), force=True)
