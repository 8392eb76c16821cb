"""pytest fixtures of the fake CRMs: import them into a conftest.py
(`from tests.fakes.fixtures import *`); each yields a started fake and stops it afterwards."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.fakes.crm import (
    HUBSPOT_TOKEN,
    SALESFORCE_SESSION,
    WEBHOOK_SECRETS,
    FakeHubSpot,
    FakeSalesforce,
    FakeWebhookReceiver,
)

__all__ = [
    "HUBSPOT_TOKEN",
    "SALESFORCE_SESSION",
    "WEBHOOK_SECRETS",
    "fake_hubspot",
    "fake_salesforce",
    "fake_webhook",
    "refused_url",
]


@pytest.fixture
def fake_webhook() -> Iterator[FakeWebhookReceiver]:
    """A receiver that knows both rotation secrets (WEBHOOK_SECRETS)."""
    with FakeWebhookReceiver(WEBHOOK_SECRETS) as fake:
        yield fake


@pytest.fixture
def fake_hubspot() -> Iterator[FakeHubSpot]:
    """HubSpot accepting HUBSPOT_TOKEN, with no contacts, lists or templates yet."""
    with FakeHubSpot(HUBSPOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_salesforce() -> Iterator[FakeSalesforce]:
    """Salesforce (HTTPS, v59.0) accepting SALESFORCE_SESSION; `Reel_Key__c` is an external
    id field of Task."""
    with FakeSalesforce(SALESFORCE_SESSION, task_external_ids={"Reel_Key__c"}) as fake:
        yield fake


@pytest.fixture
def refused_url() -> str:
    """http://127.0.0.1:<port> where nothing listens (the port was just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
