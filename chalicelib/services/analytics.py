"""Campaign analytics: the funnel, retention and per-recipient stats of a campaign."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError

if TYPE_CHECKING:
    from chalicelib.tracking.analytics import CampaignReport


def campaign_analytics(b: Backends, campaign_id: str) -> CampaignReport:
    """The campaign's funnel, retention and per-recipient stats, from its stored events: rows
    only for the recipients who consent to identified tracking."""
    from chalicelib.services import templates
    from chalicelib.tracking.analytics import campaign_report
    from chalicelib.tracking.consent import consenting

    pages = b.recipients.campaign_pages(campaign_id)
    record = b.templates.get_template(campaign_id)
    if not pages and record is None:
        raise NotFoundError(f"no campaign {campaign_id!r}", field="campaign_id")
    rows: set[str] | None = None
    kept: int | None = None
    if record is not None:
        template = templates.materialize(b, record).template
        kept = template.retention.days("events")
        rows = set()
        for page in pages:
            known = b.recipients.get_recipient(campaign_id, page.recipient_id)
            if consenting(template, known.consent if known is not None else None):
                rows.add(page.recipient_id)
    events = b.events.for_campaign(campaign_id)
    report = campaign_report(
        campaign_id, pages, events, time.time(), consenting=rows, events_kept_days=kept
    )
    if record is None:
        return report
    from chalicelib.tracking.experiments import (
        experiment_reports,
        interaction_stats,
        scene_drop_off,
    )

    template = templates.materialize(b, record).template
    mine = [e for e in events if e.campaign_id == campaign_id]
    return report.model_copy(
        update={
            "interactions": interaction_stats(template, mine),
            "scenes": scene_drop_off(pages, mine),
            "experiments": experiment_reports(template, pages, mine),
        }
    )
