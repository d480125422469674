"""`aitrader site`: the leaderboard site, built as static files or served live from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployments.cli_options import default_reports, store_session
from deployments.output import console, one_line_errors

site_app = typer.Typer(help="The leaderboard site: every run, every decision, in a browser.")


@site_app.command("build")
@one_line_errors
def site_build(
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write the site into (default: the store's reports folder)."),
    ] = None,
) -> None:
    """Render every page of the store into static files: no server, no network, no CDN."""
    import time

    from website.build import build_site

    folder = out or default_reports() / "site"
    began = time.perf_counter()
    with store_session() as session:
        pages = build_site(session, folder)
    seconds = time.perf_counter() - began
    console().print(f"site: {len(pages)} pages in {seconds:.1f} s; open {folder / 'index.html'}")


@site_app.command("serve")
@one_line_errors
def site_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8050,
) -> None:
    """Serve the pages live from the store; open pages reload as runs complete."""
    import uvicorn

    from models.engine import get_engine
    from website.serve import site_app as live_site

    with store_session():
        pass  # says which store, and fails here if it cannot be opened
    console().print(f"serving the site at http://{host}:{port}/ (Ctrl+C stops)")
    uvicorn.run(live_site(get_engine()), host=host, port=port, log_level="warning")
