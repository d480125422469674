"""Imported first by every Python process a test starts (the tests put this folder on their
PYTHONPATH; see `coverage_of_children_only` in tests/conftest.py).

Coverage's .pth file has started measuring this process by now. Removing the variable that
started it keeps coverage out of the processes this one starts in turn: Prefect's temporary
servers, whose tracing doubled a backtest's time, and the runs of served deployments, whose
flow code the in-process flow tests measure.
"""

import os

os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
