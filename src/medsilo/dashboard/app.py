"""The dashboard web app (FastAPI): the page, its JSON state and a local copy of plotly.js.

``GET /`` is a static page that polls ``GET /api/state`` every second and redraws its charts
with Plotly (``plotly.js`` is served from the installed ``plotly`` package at
``/static/plotly.js``: the page works without internet). Handlers are plain functions, so
uvicorn runs them in its thread pool while the federation keeps writing the run.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from medsilo.dashboard.state import DashboardState

PAGE = "page.html"


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the ``plotly`` Python package."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def create_app(state: DashboardState) -> FastAPI:
    app = FastAPI(title="medsilo dashboard", docs_url=None, redoc_url=None)
    page = resources.files("medsilo.dashboard").joinpath(PAGE).read_text("utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/state")
    def api_state() -> dict[str, Any]:
        return state.snapshot()

    @app.get("/static/plotly.js")
    def static_plotly() -> Response:
        return Response(
            plotly_js(),
            media_type="application/javascript",
            headers={"Cache-Control": "max-age=3600"},
        )

    return app
