"""The Chalice app, through chalice.test.Client."""

from __future__ import annotations

import json

from chalice.test import Client

from app import app


def test_health() -> None:
    with Client(app) as client:
        response = client.http.get("/health")
    assert response.status_code == 200
    assert json.loads(response.body)["status"] == "ok"


def test_template_schema_route() -> None:
    with Client(app) as client:
        response = client.http.get("/schema/template")
    assert response.status_code == 200
    assert json.loads(response.body)["title"] == "Reel template"
