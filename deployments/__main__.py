"""`python -m deployments ...` is the `aitrader` command."""

import sys


def main() -> None:
    """The `aitrader` command; a backtest's temporary Prefect server starts before it loads."""
    from deployments.ephemeral_server import start_early

    start_early(sys.argv[1:])
    from deployments.cli import app

    app(prog_name="aitrader")


if __name__ == "__main__":
    main()
