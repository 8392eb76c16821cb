"""The campaign dashboard page: headline numbers, inline charts, recipients, escaping."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from chalicelib.landing.dashboard import dashboard_html
from chalicelib.tracking.analytics import CampaignReport, campaign_report, clock, iso_utc
from tests.unit.test_analytics import CAMPAIGN, campaign_events, ev, full_view, page

HOSTILE = '<img src=x onerror="alert(1)">'


def make_report() -> CampaignReport:
    pages = [page(f"r{i}") for i in range(1, 7)]
    return campaign_report(CAMPAIGN, pages, campaign_events(), now=1_700_000_000.0)


class _Collect(HTMLParser):
    """Collects tags and the text of the page, failing on nothing: enough to check structure."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser


def test_the_dashboard_renders_headline_numbers_charts_and_recipients() -> None:
    html = dashboard_html(make_report())
    doc = parse(html)
    text = " ".join(" ".join(doc.text).split())

    assert html.startswith("<!doctype html>")
    assert f"Campaign {CAMPAIGN}" in text
    assert "2023-11-14T22:13:20Z" in html  # generated_at, ISO UTC
    # headline: sent 6, opened 5 (83.3%), played 3 (50%), completed 1 (16.7%), clicked 2
    cards = re.findall(
        r'<dt>([^<]+)</dt>\s*<dd><span class="count">(\d+)</span><span class="rate">([^<]+)<', html
    )
    assert cards == [
        ("Sent", "6", "100%"),
        ("Opened", "5", "83.3%"),
        ("Played", "3", "50%"),
        ("Completed", "1", "16.7%"),
        ("Clicked", "2", "33.3%"),
    ]
    assert "3 views in all · 0:55 watched" in text
    # both charts inline, no script and no external resource
    assert html.count("<svg ") == 2
    assert "<script" not in html
    assert not {"script", "link", "img", "iframe"} & {t for t, _ in doc.tags}
    assert not any("src" in attrs for _, attrs in doc.tags)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    # the recipients table: one row per page, with the stats
    rows = [a for t, a in doc.tags if t == "tr"]
    assert len(rows) == 1 + 6
    assert "6 recipients" in text
    r5 = re.search(r'<th scope="row" title="r5">r5</th>(.*?)</tr>', html, re.S)
    assert r5 is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", r5.group(1), re.S)
    plain = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    assert plain[:7] == ["Yes", "Yes", "100%", "Yes", "Yes", "1", "0:30"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", plain[7])
    r1 = re.search(r'<th scope="row" title="r1">r1</th>(.*?)</tr>', html, re.S)
    assert r1 is not None and "Never" in r1.group(1)


def test_a_hostile_recipient_id_and_campaign_id_are_escaped() -> None:
    # GIVEN a campaign and a recipient whose ids are markup
    hostile_page = page(HOSTILE).model_copy(update={"campaign_id": HOSTILE})
    events = [
        e.model_copy(update={"recipient_id": HOSTILE, "campaign_id": HOSTILE})
        for e in full_view("x")
    ]
    report = campaign_report(HOSTILE, [hostile_page], events, now=0)
    assert report.recipients[0].completed
    html = dashboard_html(report)
    assert HOSTILE not in html
    assert "<img" not in html
    assert "&lt;img src=x onerror=" in html
    doc = parse(html)
    assert not any(t == "img" for t, _ in doc.tags)
    assert all("onerror" not in a for _, a in doc.tags)


def test_an_empty_campaign() -> None:
    html = dashboard_html(campaign_report("new", [], [], now=0))
    assert "No recipients yet" in html
    assert "<table" not in html
    assert html.count("<svg ") == 2


def test_formatting_helpers() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(None) == ""
    assert [clock(s) for s in (0, 7.4, 75.6, 3600, 3725)] == [
        "0:00",
        "0:07",
        "1:16",
        "1:00:00",
        "1:02:05",
    ]


def test_a_click_after_a_play_is_shown() -> None:
    events = [ev("impression", 0, "a"), ev("play", 1, "a", position=0.0), ev("cta_click", 3, "a")]
    html = dashboard_html(campaign_report(CAMPAIGN, [page("a")], events, now=0))
    row = re.search(r'<th scope="row" title="a">a</th>(.*?)</tr>', html, re.S)
    assert row is not None
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells[:6] == ["Yes", "Yes", "0%", "No", "Yes", "1"]
