"""The campaign dashboard: one self-contained HTML page (inline CSS and SVG, no JavaScript)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from chalicelib.landing.charts import funnel_svg, retention_svg
from chalicelib.tracking.analytics import CampaignReport, clock, iso_utc, percent, step_label

HEADLINE_STEPS = ("sent", "opened", "played", "100%", "clicked")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("chalicelib.landing", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(percent=percent, iso_utc=iso_utc, clock=clock)
    return env


def dashboard_html(report: CampaignReport) -> str:
    """The dashboard of one campaign: headline numbers, funnel and retention charts, and a
    table of recipients."""
    steps = {s.step: s for s in report.funnel}
    headline = [
        {"label": step_label(name), "count": steps[name].count, "rate": steps[name].rate}
        for name in HEADLINE_STEPS
        if name in steps
    ]
    # Safe to mark: charts.py escapes every piece of text it puts in the SVG.
    charts = {
        "funnel": Markup(funnel_svg(report)),
        "retention": Markup(retention_svg(report)),
    }
    return (
        _environment()
        .get_template("dashboard.html")
        .render(report=report, headline=headline, charts=charts)
    )
