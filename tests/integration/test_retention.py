"""Retention on the embedded default: `reel sweep` (and `reel serve`'s hourly sweep) removes the
events, media and records a campaign's `retention:` has outlived; the analytics keep working on
what remains and say what period they cover; a period that cannot be parsed fails validation."""

from __future__ import annotations

import os
import time
from pathlib import Path

from typer.testing import CliRunner

from chalicelib import bootstrap
from chalicelib.cli import app
from chalicelib.services import recipients, templates
from chalicelib.services.analytics import campaign_analytics
from chalicelib.services.privacy import DAY, sweep
from chalicelib.tracking.events import Event
from tests.conftest import BASE_TEMPLATE, Campaign

RETENTION = "retention: {events: 30d, media: 10d, records: 60d}\n"


def event(rid: str, eid: str, received_at: float) -> Event:
    return Event(
        id=eid, kind="play", ts=received_at * 1000, campaign_id="tiny", recipient_id=rid,
        received_at=received_at,
    )  # fmt: skip


def test_the_sweep_removes_what_retention_has_outlived(campaign: Campaign) -> None:
    # GIVEN a campaign keeping events 30 days, media 10 and records 60
    campaign.write_template(BASE_TEMPLATE + RETENTION)
    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    now = time.time()
    old = recipients.set_recipient_data(b, "tiny", "old", {"first_name": "Olda"})
    new = recipients.set_recipient_data(b, "tiny", "new", {"first_name": "Nova"})
    b.recipients.put_recipient(old.model_copy(update={"updated_at": now - 61 * DAY}))
    b.events.add([event("new", "ev-old-0001", now - 31 * DAY), event("new", "ev-new-0001", now)])
    page = b.recipients.get_page(new.token)
    assert page is not None
    b.blobs.put_bytes(page.video_key, b"old video")
    b.blobs.put_bytes(page.poster_key, b"fresh poster")
    stale = b.blobs.path(page.video_key)  # type: ignore[attr-defined]
    os.utime(stale, (now - 11 * DAY, now - 11 * DAY))
    # WHEN the sweep runs (as `reel sweep` does)
    result = CliRunner().invoke(app, ["sweep"])
    # THEN what outlived its period is gone, the rest stays
    assert result.exit_code == 0, result.output
    assert "1 events" in result.output and "1 records" in result.output
    assert [e.id for e in b.events.for_campaign("tiny")] == ["ev-new-0001"]
    assert b.recipients.get_recipient("tiny", "old") is None
    assert b.recipients.erased(old.token)
    assert not b.blobs.exists(page.video_key) and b.blobs.exists(page.poster_key)
    # AND the analytics work on what remains and say what period they cover
    report = campaign_analytics(b, "tiny")
    assert report.sent == 1 and report.step("played").count == 1
    assert report.period_start == now and report.events_kept_days == 30
    shown = CliRunner().invoke(app, ["report", "tiny"])
    assert shown.exit_code == 0 and "kept 30 days" in shown.output
    assert "events since" in shown.output
    # AND a second sweep finds nothing more
    assert sweep(b).removed == {}


def test_an_unparseable_retention_is_a_validate_error(campaign: Campaign) -> None:
    path: Path = campaign.write_template(BASE_TEMPLATE + "retention: {events: a year}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "retention.events" in result.output and "not a retention period" in result.output
