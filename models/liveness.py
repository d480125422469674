"""Who holds a run or a model-day, and whether they are still alive.

A holder is named `host:pid/<key>`. It renews a short lease on a heartbeat while it works, so a
holder that died (kill -9, a lost container) is known within one lease, independent of how long a
model-day may take. On the same host a dead process is known at once: its pid is gone.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

DEFAULT_LEASE_S = 60.0  # a holder that stopped renewing loses its claim within a minute
HEARTBEATS_PER_LEASE = 4  # renewals per lease: a few missed beats are not a death


def this_process() -> str:
    """`host:pid` of the running process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_name(key: str) -> str:
    """The name a holder in this process claims under: `host:pid/key`."""
    return f"{this_process()}/{key}"


def process_gone(holder: str | None) -> bool:
    """True when `holder` ran on this host in a process that no longer exists.

    Another host's process cannot be seen from here: False, and its lease decides.
    """
    if not holder:
        return False
    host, _, rest = holder.partition(":")
    pid_text = rest.split("/", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def lease_end(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)


async def keep_alive(renew: Callable[[], bool], lease_seconds: float) -> None:
    """Call `renew` (in a thread: it writes to the store) on a heartbeat until it returns False
    or the task is cancelled."""
    every = lease_seconds / HEARTBEATS_PER_LEASE
    while True:
        await asyncio.sleep(every)
        if not await asyncio.to_thread(renew):
            return
