"""Reel's HTTP API (Chalice). Routes stay thin: parse, call one service function, dump."""

from __future__ import annotations

from typing import Any

from chalice import Chalice

from chalicelib import __version__
from chalicelib.template.schema import template_json_schema

app = Chalice(app_name="reel")


@app.route("/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@app.route("/schema/template")
def template_schema() -> dict[str, Any]:
    return template_json_schema()
