"""Fake CRMs on real HTTP for the connector tests: a webhook receiver, HubSpot, Salesforce."""

from __future__ import annotations

from tests.fakes.crm import (
    HUBSPOT_TOKEN,
    SALESFORCE_SESSION,
    WEBHOOK_SECRETS,
    FakeHubSpot,
    FakeSalesforce,
    FakeWebhookReceiver,
)
from tests.fakes.server import FakeServer, Reply, Request

__all__ = [
    "HUBSPOT_TOKEN",
    "SALESFORCE_SESSION",
    "WEBHOOK_SECRETS",
    "FakeHubSpot",
    "FakeSalesforce",
    "FakeServer",
    "FakeWebhookReceiver",
    "Reply",
    "Request",
]
