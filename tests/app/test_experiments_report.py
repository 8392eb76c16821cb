"""Experiments end to end on the embedded default: 60 recipients split by the hash, their
clicks, the analytics per variant in the JSON, the dashboard and `reel report`, then
`reel experiments promote` making the winner the default in a new template version."""

from __future__ import annotations

from typer.testing import CliRunner

from chalicelib import bootstrap
from chalicelib.cli import app as cli
from chalicelib.landing.dashboard import dashboard_html
from chalicelib.landing.tokens import signed_token
from chalicelib.pipeline.steps import make_job
from chalicelib.services import recipients, templates
from chalicelib.services.analytics import campaign_analytics
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import ingest
from tests.conftest import Campaign
from tests.unit.test_experiments import experimental

runner = CliRunner()


def test_variants_measured_reported_and_promoted(campaign: Campaign) -> None:
    campaign.write_template(experimental())
    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    # GIVEN 60 recipients; those shown "warm" click, the others do not
    assigned: dict[str, int] = {}
    for i in range(60):
        rid = f"r{i:02d}@example.com"
        record = recipients.set_recipient_data(b, "tiny", rid, {"first_name": f"R{i}"})
        variant = record.data["$experiments"]["greeting_test"]
        assigned[variant] = assigned.get(variant, 0) + 1
        kinds = ["impression", "play"] + (["cta_click"] if variant == "warm" else [])
        events = [
            {"id": f"e{i:03d}-{n:04d}", "kind": k, "ts": 1.8e12 + n} for n, k in enumerate(kinds)
        ]
        token = signed_token(b.secret, record.token, rid, "tiny")
        ingest(b, EventBatch.model_validate({"token": token, "events": events}))
    # WHEN the campaign is measured
    report = campaign_analytics(b, "tiny")
    [x] = report.experiments
    rows = {v.id: v for v in x.variants}
    # THEN each variant counts its own recipients, and "warm" leads on clicks
    assert {k: rows[k].sent for k in rows} == assigned
    assert rows["warm"].rate == 1.0 and rows["control"].rate == 0.0
    assert x.leader == "warm"
    assert x.enough_data is False  # fewer than 30 recipients per variant
    assert "not enough data" in x.verdict
    html = dashboard_html(report)
    assert (
        "Experiments" in html
        and "greeting_test" in html
        and "leader: <strong>warm</strong>" in html
    )
    shown = runner.invoke(cli, ["report", "tiny", "--limit", "0"])
    assert shown.exit_code == 0, shown.output
    assert "Experiment greeting_test" in shown.output and "leader: warm" in shown.output

    # WHEN the operator promotes "warm"
    before = templates.get_template(b, "tiny").version
    promoted = runner.invoke(cli, ["experiments", "promote", "tiny", "greeting_test", "warm"])
    assert promoted.exit_code == 0, promoted.output
    # THEN a new version makes everyone's video the warm one, with no experiment left
    latest = templates.get_template(b, "tiny")
    assert latest.version != before
    lt = templates.materialize(b, latest)
    assert lt.template.experiments == []
    assert lt.template.page.cta is not None and lt.template.page.cta.label == "Start now"
    plan = make_job(lt, {"first_name": "Zoe"}, "anyone@example.com", 0).plan
    assert plan.scenes[1].layers[0].layer.text == "Welcome back, Zoe!"  # type: ignore[union-attr]
    # and unknown names are refused, naming them
    bad = runner.invoke(cli, ["experiments", "promote", "tiny", "greeting_test", "loud"])
    assert bad.exit_code == 1 and "no experiment 'greeting_test'" in bad.output
