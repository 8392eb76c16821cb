"""Server-side charts of a campaign report: standalone SVG and a PNG drawn with Pillow."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from chalicelib.landing.charts import PNG_SIZE, funnel_svg, report_png, retention_svg
from chalicelib.tracking.analytics import CampaignReport, campaign_report
from tests.unit.test_analytics import CAMPAIGN, campaign_events, page

NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = '<script>alert("x")</script>&'


def make_report(campaign_id: str = CAMPAIGN) -> CampaignReport:
    pages = [page(f"r{i}") for i in range(1, 7)]
    report = campaign_report(CAMPAIGN, pages, campaign_events(), now=1_700_000_000.0)
    return report.model_copy(update={"campaign_id": campaign_id})


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.find("svg:title", NS) is not None
    return root


def test_funnel_svg_has_a_bar_per_step_with_its_count_and_rate() -> None:
    report = make_report()
    root = parse(funnel_svg(report))
    groups = root.findall("svg:g[@class='step']", NS)
    assert [g.get("data-step") for g in groups] == [s.step for s in report.funnel]
    for g, step in zip(groups, report.funnel, strict=True):
        assert len(g.findall("svg:rect[@class='bar']", NS)) == 1
        assert g.findtext("svg:text[@class='count']", namespaces=NS) == str(step.count)
    rates = [g.findtext("svg:text[@class='rate']", namespaces=NS) for g in groups]
    assert rates == ["100%", "83.3%", "50%", "33.3%", "33.3%", "16.7%", "16.7%", "33.3%"]


def test_funnel_bar_widths_follow_the_rates() -> None:
    root = parse(funnel_svg(make_report()))
    widths = [float(r.get("width", "")) for r in root.iterfind(".//svg:rect[@class='bar']", NS)]
    assert widths[0] > widths[1] > widths[2] > widths[3] == widths[4] > widths[5] == widths[6] > 0
    assert widths[2] == pytest.approx(widths[0] / 2, abs=0.1)


def test_retention_svg_has_an_11_point_line_over_0_to_100_percent() -> None:
    report = make_report()
    root = parse(retention_svg(report))
    line = root.find(".//svg:polyline[@class='line']", NS)
    assert line is not None
    points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    assert len(points) == 11
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and len(set(xs)) == 11
    # SVG y grows downwards: 100 % at the top; the curve never rises
    assert ys == sorted(ys)
    assert ys[0] == ys[1] == ys[2] < ys[3]
    assert len(root.findall(".//svg:circle[@class='point']", NS)) == 11
    assert root.find(".//svg:polygon[@class='area']", NS) is not None


def test_retention_svg_when_nobody_played() -> None:
    report = campaign_report("c", [page("a")], [], now=0)
    svg = retention_svg(report)
    parse(svg)
    assert "Nobody has played the video yet" in svg


def test_a_hostile_campaign_id_is_escaped() -> None:
    report = make_report(HOSTILE)
    for svg in (funnel_svg(report), retention_svg(report)):
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg
        root = parse(svg)
        assert HOSTILE in (root.findtext("svg:title", namespaces=NS) or "")
        assert HOSTILE in (root.get("aria-label") or "")


def test_report_png_opens_at_the_expected_size(tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    report_png(make_report(HOSTILE * 5), out)
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == PNG_SIZE
        assert im.mode == "RGB"
        # something was drawn: the accent colour of the bars is there
        colors = im.getcolors(maxcolors=PNG_SIZE[0] * PNG_SIZE[1]) or []
        assert any(c == (0x4F, 0x46, 0xE5) for _, c in colors)


def test_report_png_of_an_empty_campaign(tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    report_png(campaign_report("empty", [], [], now=0), out)
    with Image.open(out) as im:
        assert im.size == PNG_SIZE
