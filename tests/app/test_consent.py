"""Consent-aware tracking through the app on the embedded default: the campaign's tracking
mode, consent from the record (the mapping's `consent`) and from the page's banner, Sec-GPC and
DNT, the relay toward the fake CRMs, and the analytics that stay correct."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.connectors.base import Connector
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.connectors.webhook import WebhookConnector
from chalicelib.data.mapping import FieldMapping, apply_mapping
from chalicelib.errors import DataError
from chalicelib.services import recipients, templates
from chalicelib.services.analytics import campaign_analytics
from chalicelib.template.model import Template
from chalicelib.tracking.consent import ViewMode, parse_consent, view_mode
from tests.conftest import API_KEY, BASE_TEMPLATE, Campaign
from tests.fakes import WEBHOOK_SECRETS, FakeWebhookReceiver

RULES = """\
rules:
  - id: everything
    when: "event.kind == 'play' || event.kind == 'impression'"
    do: [{connector: webhook, action: event}]
"""


def template(tracking: str = "", page_consent: bool = False) -> str:
    text = BASE_TEMPLATE
    if page_consent:
        text = text.replace("  cta: {label:", "  consent: ask\n  cta: {label:")
    return text + tracking


def register(campaign: Campaign, text: str) -> None:
    campaign.write_template(text)
    (campaign.root / "rules.yaml").write_text(RULES, encoding="utf-8")
    templates.register_folder(bootstrap.backends(), campaign.root)


def person(rid: str, **data: Any) -> str:
    """A recipient known by their record; returns their page's path."""
    record = recipients.set_recipient_data(
        bootstrap.backends(), "tiny", rid, {"first_name": "Ada", **data}
    )
    return f"/v/{record.token}"


def open_page(client: Client, path: str, **headers: str) -> dict[str, Any]:
    html = client.http.get(path, headers=headers).body.decode()
    config = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])
    return {"html": html, "config": config}


def post(client: Client, token: str, prefix: str, **extra: Any) -> Any:
    headers = {"content-type": "application/json", **extra.pop("headers", {})}
    events = [
        {"id": f"{prefix}-{i:06d}", "kind": kind, "ts": 1.8e12 + i}
        for i, kind in enumerate(["impression", "play"])
    ]
    body = {"token": token, "events": events, "view": f"view-{prefix}-0001", **extra}
    return client.http.post("/events", headers=headers, body=json.dumps(body))


def stored() -> list[Any]:
    return bootstrap.backends().events.for_campaign("tiny")


def relay_to(fake: FakeWebhookReceiver) -> RelayWorker:
    b = bootstrap.backends()
    connectors: dict[str, Connector] = {
        "webhook": WebhookConnector(fake.endpoint, list(WEBHOOK_SECRETS), timeout=5),
    }
    return RelayWorker(Relay(b, connectors), b.queue)


# ── the pure rules ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("No", False), (" TRUE ", True), ("0", False), (1, True), (False, False),
     ("", None), (None, None)],
)  # fmt: skip
def test_boolean_like_consent_values(value: Any, expected: bool | None) -> None:
    assert parse_consent(value) is expected


def test_a_consent_that_is_not_yes_or_no_is_invalid_data_naming_the_column() -> None:
    mapping = FieldMapping.model_validate({"consent": {"from": "opt_in"}})
    assert apply_mapping(mapping, {"first_name": "Ada", "opt_in": "no"}) == {
        "first_name": "Ada",
        "consent": False,
    }
    with pytest.raises(DataError) as caught:
        apply_mapping(mapping, {"first_name": "Ada", "opt_in": "maybe"})
    assert (caught.value.code, caught.value.field) == ("invalid_data", "opt_in")


def test_the_view_mode_rules() -> None:
    def t(tracking: dict[str, Any], consent: str | None = None) -> Template:
        doc: dict[str, Any] = {"id": "t", "scenes": [{"id": "s", "duration": 1}]}
        doc["tracking"] = tracking
        if consent:
            doc["page"] = {"consent": consent}
        return Template.model_validate(doc)

    identified = t({})
    assert view_mode(identified, None) is ViewMode.identified  # no answer, not required
    assert view_mode(identified, False) is ViewMode.anonymous
    assert view_mode(identified, True, gpc=True) is ViewMode.anonymous
    assert view_mode(identified, True, dnt=True) is ViewMode.identified  # DNT not honoured
    assert view_mode(t({"honour_dnt": True}), True, dnt=True) is ViewMode.anonymous
    assert view_mode(t({"require_consent": True}), None) is ViewMode.anonymous
    assert view_mode(t({}, "ask"), None) is ViewMode.ask
    assert view_mode(t({}, "ask"), True) is ViewMode.identified
    assert view_mode(t({"mode": "anonymous"}), True) is ViewMode.anonymous
    assert view_mode(t({"mode": "off"}), True) is ViewMode.off


# ── through the app ────────────────────────────────────────────────────────────────────────


def test_the_record_decides_and_the_relay_sends_only_consenting_behaviour(
    local_app: Client, campaign: Campaign, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN a campaign that tracks identified with consent, and two recipients: yes and no
    register(campaign, template("tracking: {mode: identified, require_consent: true}\n"))
    yes, no = person("yes@example.com", consent="yes"), person("no@example.com", consent="no")
    # WHEN both watch
    for path, prefix in ((yes, "yes"), (no, "no")):
        page = open_page(local_app, path)
        assert page["config"]["tracking"] == ("identified" if path == yes else "anonymous")
        assert 'id="reel-consent"' not in page["html"]  # a recorded answer is not asked again
        assert post(local_app, page["config"]["token"], prefix).status_code == 202
    relay_to(fake_webhook).step()
    # THEN only the consenting recipient's behaviour is tied to them and reaches the CRM
    events = stored()
    assert {e.recipient_id for e in events if e.id.startswith("yes")} == {"yes@example.com"}
    assert {e.recipient_id for e in events if e.id.startswith("no")} == {""}
    assert {e.view for e in events if e.id.startswith("no")} == {"view-no-0001"}
    assert len(fake_webhook.payloads) == 2
    assert {p["data"]["event"]["recipient_id"] for p in fake_webhook.payloads} == {
        "yes@example.com"
    }
    assert "no@example.com" not in json.dumps(fake_webhook.payloads)
    # AND the analytics count both views, with a row for the consenting recipient only
    report = campaign_analytics(bootstrap.backends(), "tiny")
    assert report.sent == 2
    assert (report.step("opened").count, report.step("played").count) == (2, 2)
    assert report.anonymous_views == 1
    assert [r.recipient_id for r in report.recipients] == ["yes@example.com"]
    dashboard = local_app.http.get("/dashboard/tiny").body.decode()
    assert "Covers the events from" in dashboard and "no@example.com" not in dashboard


def test_a_bad_consent_value_is_invalid_data_naming_the_field(
    local_app: Client, campaign: Campaign
) -> None:
    register(campaign, template())
    response = local_app.http.put(
        "/recipients/ada/data",
        headers={"content-type": "application/json", "x-api-key": API_KEY},
        body=json.dumps({"campaign_id": "tiny", "data": {"first_name": "Ada", "consent": "?"}}),
    )
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert (error["code"], error["field"]) == ("invalid_data", "consent")


@pytest.mark.parametrize(
    ("headers", "tracking", "mode"),
    [
        ({"Sec-GPC": "1"}, "", "anonymous"),
        ({"DNT": "1"}, "", "identified"),
        ({"DNT": "1"}, "tracking: {honour_dnt: true}\n", "anonymous"),
    ],
)
def test_browser_privacy_signals_make_the_view_anonymous(
    local_app: Client,
    campaign: Campaign,
    fake_webhook: FakeWebhookReceiver,
    headers: dict[str, str],
    tracking: str,
    mode: str,
) -> None:
    register(campaign, template(tracking))
    path = person("ada@example.com", consent=True)
    page = open_page(local_app, path, **headers)
    assert page["config"]["tracking"] == mode
    assert post(local_app, page["config"]["token"], "gpc", headers=headers).status_code == 202
    relay_to(fake_webhook).step()
    identified = [e for e in stored() if e.recipient_id]
    assert bool(identified) == (mode == "identified")
    assert len(fake_webhook.payloads) == (2 if mode == "identified" else 0)


def test_the_page_asks_and_nothing_is_identified_before_acceptance(
    local_app: Client, campaign: Campaign, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN a page that asks, and a recipient with no recorded answer
    register(campaign, template(page_consent=True))
    path = person("ada@example.com")
    page = open_page(local_app, path)
    # THEN the banner is there: a labelled region with two buttons
    assert page["config"]["tracking"] == "ask"
    html = page["html"]
    assert 'role="region" aria-labelledby="reel-consent-title"' in html
    assert 'id="reel-consent-accept"' in html and 'id="reel-consent-decline"' in html
    assert "<script>" not in html  # no inline script: the CSP stays script-src 'self'
    token = page["config"]["token"]
    # WHEN events come before an answer, then after a "no", then after a "yes"
    post(local_app, token, "before")
    post(local_app, token, "declined", consent=False)
    relay_to(fake_webhook).step()
    assert [e for e in stored() if e.recipient_id] == []
    assert fake_webhook.payloads == []
    post(local_app, token, "accepted", consent=True)
    relay_to(fake_webhook).step()
    # THEN only the events after acceptance are identified, and the answer is kept
    identified = {e.id.split("-")[0] for e in stored() if e.recipient_id}
    assert identified == {"accepted"}
    assert len(fake_webhook.payloads) == 2
    known = bootstrap.backends().recipients.get_recipient("tiny", "ada@example.com")
    assert known is not None and (known.consent, known.consent_source) == (True, "page")
    assert open_page(local_app, path)["config"]["tracking"] == "identified"  # not asked again


def test_tracking_off_sends_and_keeps_nothing(local_app: Client, campaign: Campaign) -> None:
    register(campaign, template("tracking: {mode: off}\n"))  # YAML's bare off: false
    page = open_page(local_app, person("ada@example.com", consent=True))
    assert page["config"]["tracking"] == "off"
    assert post(local_app, page["config"]["token"], "off").status_code == 202
    assert stored() == []


def test_the_demo_honours_its_opt_in_column() -> None:
    from chalicelib.cli import DEMO_DIR
    from chalicelib.data.readers import read_rows
    from chalicelib.services.templates import campaign_mapping_file
    from chalicelib.template.library import load_template

    mapping = campaign_mapping_file(DEMO_DIR)
    lt = load_template(DEMO_DIR / "template.yaml")
    answers = {}
    for row in read_rows(DEMO_DIR / "recipients.csv"):
        assert row.fields is not None
        record = apply_mapping(mapping, row.fields)
        answers[row.fields["opt_in"]] = view_mode(lt.template, record.get("consent"))
    assert answers == {"yes": ViewMode.identified, "no": ViewMode.anonymous}


def test_the_relay_drops_behaviour_queued_before_consent_was_withdrawn(
    local_app: Client, campaign: Campaign, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN a consenting recipient's events on the relay queue
    register(campaign, template())
    page = open_page(local_app, person("ada@example.com", consent="yes"))
    post(local_app, page["config"]["token"], "queued")
    # WHEN their record says no before the relay runs
    person("ada@example.com", consent="no")
    relay_to(fake_webhook).step()
    # THEN nothing about them reaches the CRM
    assert fake_webhook.payloads == []
    assert bootstrap.backends().deliveries.by_status(None) == []
