"""The demo campaign itself: valid, every recipient binds, and the whole video renders in a
single pass (which once stalled ffmpeg: a still repeated by the `loop` filter, in a graph
joining scenes with concat)."""

from __future__ import annotations

from pathlib import Path

from chalicelib.cli import DEMO_DIR
from chalicelib.data.readers import read_rows
from chalicelib.render.engine import render
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template, validate_template_file
from tests.media import probe


def test_the_demo_template_is_valid() -> None:
    assert validate_template_file(DEMO_DIR / "template.yaml") == []


def test_every_demo_recipient_binds_to_a_30_second_video() -> None:
    lt = load_template(DEMO_DIR / "template.yaml")
    rows = list(read_rows(DEMO_DIR / "recipients.csv"))
    assert len(rows) == 20
    durations = {}
    for row in rows:
        fields = row.fields or {}
        durations[fields["recipient_id"]] = bind(lt, fields).duration
    # growth and enterprise recipients (with their month's numbers) get the 5 s chart scene
    # (less its 0.5 s crossfade)
    charted = {
        r.fields["recipient_id"]
        for r in rows
        if r.fields and str(r.fields.get("segment", "")).strip().lower() in ("growth", "enterprise")
    }
    assert len(charted) == 13
    assert {durations[r] for r in charted} == {34.5}
    assert {d for r, d in durations.items() if r not in charted} == {30.0}


def test_the_demo_renders_in_a_single_pass(out: Path) -> None:
    lt = load_template(DEMO_DIR / "template.yaml")
    [row] = [r for r in read_rows(DEMO_DIR / "recipients.csv") if r.line == 3]
    for attempt in range(3):  # the stall was intermittent
        video = render(bind(lt, row.fields or {}), out / f"{attempt}.mp4", preview=True).path
        p = probe(video)
        # a growth recipient: the 30 s, and the chart scene (4.5 s more)
        assert (p.width, p.height, p.frames) == (320, 180, 345)
