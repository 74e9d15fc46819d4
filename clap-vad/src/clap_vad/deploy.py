"""Flower deployment entry points for `flwr run` (pyproject [tool.flwr.app.components]).

The ServerApp runs `engine.fit_on_grid` on the live Grid (config from the run config); the
ClientApp is the same one the simulations use.
"""

from __future__ import annotations

from . import engine, flower_app

client_app = flower_app.make_client_app(None)
server_app = flower_app.make_server_app(None, None, None, deploy_main=engine.fit_on_grid)
