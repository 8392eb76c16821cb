"""Interaction events through the relay to the fake HubSpot on 127.0.0.1: the README's rule
writes a poll answer to a contact property, and a rule on a button's click reaches it too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.connectors.base import Connector
from chalicelib.connectors.hubspot import HubSpotConnector
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.landing.tokens import signed_token
from chalicelib.services import recipients
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import ingest
from tests.conftest import Campaign
from tests.fakes.crm import HUBSPOT_TOKEN, FakeHubSpot
from tests.integration.test_relay import Clock, drain, setup_campaign
from tests.interactive import interactive_template

ADA = "ada@example.com"
# The README's example (Behaviour data exchange), and one on the button.
RULES = """\
    rules:
      - id: poll_answer
        when: "event.kind == 'form_submit' && event.interaction == 'poll'"
        do:
          - connector: hubspot
            action: set_property
            params: {properties: {team_size: "{{ event.answers.team_size }}"}}
      - id: booked
        when: "event.kind == 'interaction_click' && event.interaction == 'book'"
        do:
          - connector: hubspot
            action: set_property
            params: {properties: {video_booked: "true"}}
    """


@pytest.fixture
def relay(campaign: Campaign, fake_hubspot: FakeHubSpot) -> Iterator[tuple[RelayWorker, Clock]]:
    fake_hubspot.add_contact(ADA, firstname="Ada")
    fake_hubspot.add_property("team_size")
    fake_hubspot.add_property("video_booked")
    campaign.write_template(interactive_template())
    b = setup_campaign(campaign, RULES)
    clock = Clock()
    connectors: dict[str, Connector] = {
        "hubspot": HubSpotConnector(HUBSPOT_TOKEN, base_url=fake_hubspot.url, timeout=5)
    }
    yield RelayWorker(Relay(b, connectors, clock=clock), b.queue), clock


def send(worker: RelayWorker, items: list[dict[str, Any]]) -> None:
    b = worker.relay.b
    known = b.recipients.get_recipient("tiny", ADA)
    if known is None:
        known = recipients.set_recipient_data(b, "tiny", ADA, {"first_name": "Ada"})
    token = signed_token(b.secret, known.token, ADA, "tiny")
    ingest(b, EventBatch.model_validate({"token": token, "events": items}))


def test_a_poll_answer_and_a_click_reach_hubspot(
    relay: tuple[RelayWorker, Clock], fake_hubspot: FakeHubSpot
) -> None:
    worker, clock = relay
    # GIVEN Ada's page showed the button and the poll; she clicks and answers
    send(
        worker,
        [
            {"id": "rx-000001", "kind": "interaction_shown", "ts": 1.8e12, "interaction": "book"},
            {
                "id": "rx-000002",
                "kind": "interaction_click",
                "ts": 1.8e12 + 1,
                "interaction": "book",
            },
            {
                "id": "rx-000003",
                "kind": "form_submit",
                "ts": 1.8e12 + 2,
                "interaction": "poll",
                "answers": {"team_size": "11-50", "topics": ["api"]},
            },
        ],
    )
    # (the click's beacon retried: delivered once all the same)
    send(
        worker,
        [{"id": "rx-000002", "kind": "interaction_click", "ts": 1.8e12 + 1, "interaction": "book"}],
    )
    drain(worker, clock)
    # THEN her HubSpot contact has the answer and the click, each written once
    contact = fake_hubspot.contact(ADA)
    assert contact is not None
    assert (contact["team_size"], contact["video_booked"]) == ("11-50", "true")
    delivered = worker.relay.b.deliveries.by_status(None)
    assert sorted(key for d in delivered for key in d.out.params["properties"]) == [
        "team_size",
        "video_booked",
    ]


VARIANT_RULES = """\
    rules:
      - id: variant
        when: "event.kind == 'play' && experiments.greeting_test != null"
        do:
          - connector: hubspot
            action: set_property
            params: {properties: {video_variant: "{{ experiments.greeting_test }}"}}
    """


def test_the_variant_is_stored_with_the_page_and_reaches_the_crm(
    campaign: Campaign, fake_hubspot: FakeHubSpot
) -> None:
    from chalicelib.template.experiments import ASSIGNED, assign
    from tests.unit.test_experiments import experimental

    fake_hubspot.add_contact(ADA, firstname="Ada")
    fake_hubspot.add_property("video_variant")
    campaign.write_template(experimental())
    b = setup_campaign(campaign, VARIANT_RULES)
    clock = Clock()
    connectors: dict[str, Connector] = {
        "hubspot": HubSpotConnector(HUBSPOT_TOKEN, base_url=fake_hubspot.url, timeout=5)
    }
    worker = RelayWorker(Relay(b, connectors, clock=clock), b.queue)
    # GIVEN Ada's record: her variant is assigned by the hash, kept with her record and page
    record = recipients.set_recipient_data(b, "tiny", ADA, {"first_name": "Ada"})
    from chalicelib.services import templates

    lt = templates.materialize(b, templates.get_template(b, "tiny"))
    expected = assign(lt.template.experiments[0], ADA)
    assert record.data[ASSIGNED] == {"greeting_test": expected}
    page = b.recipients.get_page(record.token)
    assert page is not None and page.experiments == {"greeting_test": expected}
    # WHEN she plays her video, THEN the rule writes her variant to her CRM contact
    send(worker, [{"id": "vx-000001", "kind": "play", "ts": 1.8e12}])
    drain(worker, clock)
    contact = fake_hubspot.contact(ADA)
    assert contact is not None and contact["video_variant"] == expected
