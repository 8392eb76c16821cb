"""The segment planner: which runs are variable, where they are cut, and stable content keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.render.cache import file_digest
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import plan_runs, run_key
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.plan import RenderPlan
from tests.conftest import Campaign

CTX = {"engine": "1", "ffmpeg": "test", "fonts": "f"}


def plan_for(campaign: Campaign, **record: object) -> RenderPlan:
    return bind(load_template(campaign.template), {"first_name": "Ann", **record})


def profile(plan: RenderPlan) -> EncodingProfile:
    return EncodingProfile.for_canvas(plan.canvas)


def runs_of(plan: RenderPlan) -> list[tuple[int, int, bool, list[str]]]:
    return [
        (r.start, r.end, r.personal, [p.scene.id for p in r.chain])
        for r in plan_runs(plan, profile(plan))
    ]


def keys(plan: RenderPlan) -> list[str]:
    return [run_key(r, profile(plan), file_digest, CTX) for r in plan_runs(plan, profile(plan))]


def test_static_and_variable_runs_with_cuts(campaign: Campaign) -> None:
    # intro (static, 10 frames), greeting (variable, 10), outro (static, 6)
    assert runs_of(plan_for(campaign)) == [
        (0, 10, False, ["intro"]),
        (10, 20, True, ["greeting"]),
        (20, 26, False, ["outro"]),
    ]


def test_a_conditional_scene_is_static_content(campaign: Campaign) -> None:
    # the pro offer plays for some recipients only, but looks the same for all of them
    assert runs_of(plan_for(campaign, plan="pro")) == [
        (0, 10, False, ["intro"]),
        (10, 20, True, ["greeting"]),
        (20, 34, False, ["pro_offer", "outro"]),
    ]


def _greeting(campaign: Campaign, timing: str) -> None:
    text = campaign.template.read_text().replace(
        "duration: 1.0\n    background: {color", "duration: 3.0\n    background: {color"
    )
    campaign.write_template(
        text.replace(
            "size: [140, 40], at: [0.5, 0.5]}", f"size: [140, 40], at: [0.5, 0.5], {timing}}}"
        )
    )


def test_runs_are_cut_where_a_personal_layer_shows(campaign: Campaign) -> None:
    # GIVEN a 3 s greeting (frames 10…39) whose name shows from 1.5 s to 2 s (frames 25…29)
    _greeting(campaign, "start: 1.5, duration: 0.5")
    plan = plan_for(campaign)
    runs = plan_runs(plan, profile(plan))
    assert [(r.start, r.end, r.personal) for r in runs] == [
        (0, 25, False),
        (25, 30, True),
        (30, 46, False),
    ]
    # off-screen, the name is neither rendered nor part of the key: Ann's and Bob's match
    assert runs[0].layers == ((0,), ())
    bob = plan_for(campaign, first_name="Bob")
    assert keys(plan)[0] == keys(bob)[0] and keys(plan)[2] == keys(bob)[2]
    assert keys(plan)[1] != keys(bob)[1]
    # and only the frames of each run are made
    assert runs[1].keeps == ((15, 20),)


def test_personal_spans_snap_to_scene_edges(campaign: Campaign) -> None:
    # a name from 0.3 s to 2.5 s is variable for the whole greeting: no 3-frame static pieces
    _greeting(campaign, "start: 0.3, duration: 2.2")
    plan = plan_for(campaign)
    assert [(r.start, r.end, r.personal) for r in plan_runs(plan, profile(plan))] == [
        (0, 10, False),
        (10, 40, True),
        (40, 46, False),
    ]


def test_single_pass_is_one_run(campaign: Campaign) -> None:
    plan = plan_for(campaign, plan="pro")
    [run] = plan_runs(plan, profile(plan), split=False)
    assert (run.start, run.end, len(run.chain)) == (0, 34, 4)


def test_keys_are_stable_and_only_personal_runs_change(campaign: Campaign) -> None:
    ann, ann_again, bob = (
        plan_for(campaign),
        plan_for(campaign),
        plan_for(campaign, first_name="Bob"),
    )
    assert keys(ann) == keys(ann_again)
    k_ann, k_bob = keys(ann), keys(bob)
    assert k_ann[0] == k_bob[0] and k_ann[2] == k_bob[2]  # static intro and outro: shared
    assert k_ann[1] != k_bob[1]  # the greeting differs


def test_same_values_share_a_segment_wherever_it_falls(campaign: Campaign) -> None:
    # GIVEN the conditional pro offer before the greeting: it shifts the greeting for pro
    text = campaign.template.read_text()
    offer = "  - use: pro_offer\n    when: \"plan == 'pro'\"\n"
    campaign.write_template(
        text.replace(offer, "").replace("  - id: greeting", offer + "  - id: greeting")
    )
    basic, pro = plan_for(campaign), plan_for(campaign, plan="pro")
    assert [r.start for r in plan_runs(basic, profile(basic)) if r.personal] == [10]
    assert [r.start for r in plan_runs(pro, profile(pro)) if r.personal] == [18]
    # THEN the greeting's segment has the same key at both places
    assert keys(basic)[1] == keys(pro)[1]


def test_asset_bytes_are_part_of_the_key(campaign: Campaign) -> None:
    before = keys(plan_for(campaign))
    loop: Path = campaign.root / "assets" / "loop.mp4"
    loop.write_bytes(loop.read_bytes() + b"\0")
    after = keys(plan_for(campaign))
    assert before[0] != after[0] and before[1:] == after[1:]


def test_the_context_is_part_of_the_key(campaign: Campaign) -> None:
    plan = plan_for(campaign)
    [run, *_] = plan_runs(plan, profile(plan))
    newer = {**CTX, "ffmpeg": "other"}
    assert run_key(run, profile(plan), file_digest, CTX) != run_key(
        run, profile(plan), file_digest, newer
    )


def test_cache_keys_without_an_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's Lambda has no ffmpeg: REEL_FFMPEG_VERSION names the pinned one for the keys."""
    from chalicelib import bootstrap
    from chalicelib.render.engine import cache_context
    from chalicelib.render.ffmpeg import ffmpeg_version

    real = ffmpeg_version()
    # GIVEN settings naming an ffmpeg that is not there, and its version
    monkeypatch.setenv("REEL_FFMPEG", "/nonexistent/ffmpeg")
    monkeypatch.setenv("REEL_FFMPEG_VERSION", real)
    bootstrap.reset()
    config = bootstrap.backends().render
    # THEN the cache keys name that version without running anything
    assert config.ffmpeg == "/nonexistent/ffmpeg"
    assert ffmpeg_version(config) == real
    assert real in json.dumps(cache_context(config))
