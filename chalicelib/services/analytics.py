"""Campaign analytics: the funnel, retention and per-recipient stats of a campaign."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError

if TYPE_CHECKING:
    from chalicelib.tracking.analytics import CampaignReport


def campaign_analytics(b: Backends, campaign_id: str) -> CampaignReport:
    """The campaign's funnel, retention and per-recipient stats, from its stored events."""
    from chalicelib.tracking.analytics import campaign_report

    pages = b.recipients.campaign_pages(campaign_id)
    if not pages and b.templates.get_template(campaign_id) is None:
        raise NotFoundError(f"no campaign {campaign_id!r}", field="campaign_id")
    return campaign_report(campaign_id, pages, b.events.for_campaign(campaign_id), time.time())
