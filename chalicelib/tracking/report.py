"""The campaign report in the terminal: rich tables of the funnel and of the recipients."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from chalicelib.tracking.analytics import (
    CampaignReport,
    RecipientStats,
    clock,
    iso_utc,
    percent,
    step_label,
)

BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"


def text_bar(rate: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells filled to `rate` (0..1), in eighths of a cell: 0.5 → '██████████'."""
    eighths = round(min(max(rate, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def _when(ts: float | None) -> str:
    return iso_utc(ts) or "—"


def _flag(value: bool) -> Text:
    return Text("yes", style="green") if value else Text("no", style="dim")


def _period(report: CampaignReport) -> str:
    """What the numbers cover: since the oldest event kept, and how long events are kept."""
    since = f" · events since {_when(report.period_start)}" if report.period_start else ""
    kept = f" (kept {report.events_kept_days} days)" if report.events_kept_days else ""
    anonymous = f" · {report.anonymous_views} anonymous views" if report.anonymous_views else ""
    return since + kept + anonymous


def report_table(report: CampaignReport) -> Table:
    """The funnel: each step with its count, its rate of `sent` and a small bar."""
    table = Table(
        title=Text(f"Campaign {report.campaign_id}"),  # Text: ids are not console markup
        caption=(
            f"{report.totals.views} views · {clock(report.totals.watch_time)} watched · "
            f"{_when(report.generated_at)}{_period(report)}"
        ),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("Step")
    table.add_column("Count", justify="right")
    table.add_column("Rate", justify="right")
    table.add_column("", no_wrap=True, min_width=BAR_WIDTH)
    for step in report.funnel:
        style = "green" if step.step == "clicked" else "magenta"
        table.add_row(
            step_label(step.step),
            str(step.count),
            percent(step.rate),
            Text(text_bar(step.rate), style=style),
        )
    return table


def _widest(stats: list[RecipientStats]) -> int:
    return max((len(r.recipient_id) for r in stats), default=9)


def recipients_table(report: CampaignReport, limit: int = 20) -> Table:
    """The first `limit` recipients, in the report's order, with a caption counting the rest."""
    shown = report.recipients[: max(limit, 0)]
    hidden = len(report.recipients) - len(shown)
    table = Table(
        title="Recipients",
        title_justify="left",
        caption=f"… and {hidden} more" if hidden else None,
        caption_justify="left",
    )
    # The id first and whole (it is what people look for); the flags are short.
    table.add_column("Recipient", overflow="fold", min_width=min(24, _widest(shown)))
    for name in ("Opened", "Played"):
        table.add_column(name)
    table.add_column("Max", justify="right")
    for name in ("Done", "Clicked"):
        table.add_column(name)
    table.add_column("Views", justify="right")
    table.add_column("Watched", justify="right")
    table.add_column("Last seen (UTC)", overflow="fold")
    for r in shown:
        table.add_row(
            Text(r.recipient_id),
            _flag(r.opened),
            _flag(r.played),
            f"{r.max_progress}%",
            _flag(r.completed),
            _flag(r.clicked),
            str(r.views),
            clock(r.watch_time),
            _when(r.last_seen),
        )
    return table


def experiments_tables(report: CampaignReport) -> list[Table]:
    """One table per experiment: each variant's funnel, its rate with a 95 % interval, the
    probability it beats the control and the test's p-value; the caption names the leader
    and whether the data suffices."""
    tables = []
    for x in report.experiments:
        enough = "enough data" if x.enough_data else "not enough data"
        table = Table(
            title=Text(f"Experiment {x.id} (metric: {x.metric})"),
            caption=Text(f"leader: {x.leader} · {enough} · {x.verdict}"),
            title_justify="left",
            caption_justify="left",
        )
        table.add_column("Variant")
        for column in ("Sent", "Opened", "Played", "Done", "Clicked", "Acted"):
            table.add_column(column, justify="right")
        table.add_column("Rate (95 %)", justify="right")
        table.add_column("P(beats control)", justify="right")
        table.add_column("p-value", justify="right")
        for v in x.variants:
            name = Text(v.id + (" (control)" if v.id == x.control else ""))
            table.add_row(
                name,
                *(
                    str(n)
                    for n in (v.sent, v.opened, v.played, v.completed, v.clicked, v.interacted)
                ),
                f"{percent(v.rate)} ({percent(v.low)}–{percent(v.high)})",
                "—" if v.p_beats_control is None else percent(v.p_beats_control),
                "—" if v.p_value is None else f"{v.p_value:.3f}",
            )
        tables.append(table)
    return tables


def interactions_table(report: CampaignReport) -> Table | None:
    """Per interaction (shown, acted, click-through, the split of choices) and per scene (the
    drop-off); None when the campaign has neither."""
    if not report.interactions and not report.scenes:
        return None
    table = Table(title="Interactions and scenes", title_justify="left")
    table.add_column("What")
    table.add_column("Shown / reached", justify="right")
    table.add_column("Acted / stopped", justify="right")
    table.add_column("Rate", justify="right")
    table.add_column("Choices")
    for i in report.interactions:
        split = " · ".join(f"{k}: {n}" for k, n in i.choices.items())
        table.add_row(
            Text(f"{i.type} {i.id}"),
            str(i.shown),
            str(i.clicked),
            percent(i.click_through),
            Text(split),
        )
    for d in report.scenes:
        table.add_row(
            Text(f"scene {d.scene}"), str(d.reached), str(d.stopped), percent(d.drop_off), ""
        )
    return table
