"""Whether another run's holder has stopped, as Prefect knows it: its flow run ended or crashed.

A holder on another host that still looks alive by its lease may belong to a flow run Prefect has
already marked Crashed or Cancelled (its worker or container was lost); its days are taken over
at once instead of after the lease.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from sqlalchemy.engine import Engine

from models.runs import flow_run_of_holder

CHECK_EVERY_S = 5.0  # each answer is a Prefect API round trip: ask again at most this often


class FlowRunWatch:
    """Answers `claim_when_free`'s question "has this holder stopped?" from Prefect's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._answers: dict[str, tuple[float, bool]] = {}

    async def __call__(self, holder: str) -> bool:
        asked_at, stopped = self._answers.get(holder, (float("-inf"), False))
        if time.monotonic() - asked_at >= CHECK_EVERY_S:
            stopped = await self._flow_run_ended(holder)
            self._answers[holder] = (time.monotonic(), stopped)
        return stopped

    async def _flow_run_ended(self, holder: str) -> bool:
        flow_run_id = await asyncio.to_thread(flow_run_of_holder, self.engine, holder)
        if flow_run_id is None:
            return False
        try:
            async with get_client() as client:
                flow_run = await client.read_flow_run(uuid.UUID(flow_run_id))
        except (ObjectNotFound, httpx.HTTPError, ValueError):
            return False  # another Prefect server's run, or none reachable: the lease decides
        return flow_run.state is not None and flow_run.state.is_final()
