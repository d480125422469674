"""`aitrader site serve`: the site's pages rendered from the store at each request.

A page asks `/_version` every ten seconds and reloads when the store has changed (a run started or
ended, a model-day was written), so a page left open follows a daily run as it completes.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from website.build import ASSETS, Site, store_version

MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".txt": "text/plain"}


def site_app(engine: Engine) -> Starlette:
    """The live site of the store behind `engine`."""

    def page(request: Request) -> Response:
        path = request.path_params["path"]
        with Session(engine) as session:
            html = Site(session, live=True).render(path)
        if html is None:
            return PlainTextResponse(f"no page {path!r} in this store", status_code=404)
        return HTMLResponse(html)

    def version(request: Request) -> Response:
        with Session(engine) as session:
            return JSONResponse({"version": store_version(session)})

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        known = {file.name: file for file in ASSETS.iterdir()}
        if name not in known:
            return PlainTextResponse(f"no asset {name!r}", status_code=404)
        return Response(known[name].read_bytes(), media_type=MEDIA_TYPES[known[name].suffix])

    return Starlette(
        routes=[
            Route("/_version", version),
            Route("/assets/{name}", asset),
            Route("/{path:path}", page),
        ]
    )
