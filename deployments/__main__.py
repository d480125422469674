"""`python -m deployments ...` is the `aitrader` command."""

from deployments.cli import app

app(prog_name="aitrader")
