"""The terminal report: rich tables of the funnel and of the recipients."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from chalicelib.tracking.analytics import CampaignReport, campaign_report
from chalicelib.tracking.report import recipients_table, report_table, text_bar
from tests.unit.test_analytics import CAMPAIGN, campaign_events, page


def make_report() -> CampaignReport:
    pages = [page(f"r{i}") for i in range(1, 7)]
    return campaign_report(CAMPAIGN, pages, campaign_events(), now=1_700_000_000.0)


def render(table: Table) -> str:
    console = Console(record=True, width=100, color_system=None)
    console.print(table)
    return console.export_text()


def line_of(text: str, label: str) -> str:
    lines = [line for line in text.splitlines() if f" {label} " in line]
    assert len(lines) == 1, (label, text)
    return lines[0]


def test_report_table_shows_the_funnel_with_counts_rates_and_bars() -> None:
    text = render(report_table(make_report()))
    assert "Campaign spring" in text
    assert "3 views · 0:55 watched · 2023-11-14T22:13:20Z" in text
    expected = {
        "Sent": ("6", "100%"),
        "Opened": ("5", "83.3%"),
        "Played": ("3", "50%"),
        "Watched 25%": ("2", "33.3%"),
        "Watched 75%": ("1", "16.7%"),
        "Completed": ("1", "16.7%"),
        "Clicked": ("2", "33.3%"),
    }
    for label, (count, rate) in expected.items():
        line = line_of(text, label)
        assert f" {count} " in line and f" {rate} " in line, line
    assert "█" * 20 in line_of(text, "Sent")
    assert "█" * 10 + " " in line_of(text, "Played")
    for line in text.splitlines():
        assert len(line) <= 100


def test_recipients_table_lists_the_recipients_up_to_the_limit() -> None:
    report = make_report()
    text = render(recipients_table(report))
    assert "Recipients" in text
    r5 = line_of(text, "r5")
    assert r5.count("yes") == 4 and "100%" in r5 and "0:30" in r5
    r1 = line_of(text, "r1")
    assert "yes" not in r1 and "—" in r1
    assert "more" not in text

    short = render(recipients_table(report, limit=2))
    assert " r1 " in short and " r2 " in short and " r3 " not in short
    assert "… and 4 more" in short


def test_markup_in_ids_is_printed_as_is() -> None:
    report = make_report()
    hostile = report.model_copy(update={"campaign_id": "[bold red]x[/]"})
    hostile = hostile.model_copy(
        update={
            "recipients": [
                r.model_copy(update={"recipient_id": "[red]r[/]"}) for r in report.recipients
            ]
        }
    )
    assert "Campaign [bold red]x[/]" in render(report_table(hostile))
    assert "[red]r[/]" in render(recipients_table(hostile, limit=1))


def test_text_bar() -> None:
    assert text_bar(0) == " " * 20
    assert text_bar(1) == "█" * 20
    assert text_bar(0.5) == "█" * 10 + " " * 10
    assert text_bar(1 / 16, width=4) == "▎   "  # a quarter of a cell: two eighths
    assert text_bar(2.5) == text_bar(1) and text_bar(-1) == text_bar(0)
