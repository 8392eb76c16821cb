"""Localizing a plan: URLs from data go to the asset fetcher it is given (once per URL), and
without one a URL is refused naming its variable; local media are checked either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.errors import AssetError
from chalicelib.render.localize import localize
from chalicelib.render.sniff import Kind
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.plan import RenderPlan
from tests.conftest import Campaign

# The avatar twice (two layers) and a logo: three media refs from data.
TEMPLATE = """\
id: tiny
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true}
  avatar: {type: image}
  logo: {type: image}
scenes:
  - id: greeting
    duration: 1.0
    background: {color: '#102040'}
    layers:
      - {type: image, src: "{{ avatar }}", size: 30, at: [0.2, 0.2], when: avatar}
      - {type: image, src: "{{ avatar }}", size: 30, at: [0.8, 0.2], when: avatar}
      - {type: image, src: "{{ logo }}", size: 30, at: [0.5, 0.8], when: logo}
"""

ANN = "https://cdn.example.com/people/ann.png"
LOGO = "https://cdn.example.com/brand/logo.png"


class RecordingFetcher:
    """An asset fetcher that records what it is asked and hands back one local picture."""

    def __init__(self, picture: Path):
        self.picture = picture
        self.calls: list[tuple[str, Kind, str]] = []

    def fetch(self, url: str, kind: Kind, *, field: str) -> Path:
        self.calls.append((url, kind, field))
        return self.picture


def plan_for(campaign: Campaign, **record: str) -> RenderPlan:
    campaign.write_template(TEMPLATE)
    return bind(load_template(campaign.template), {"first_name": "Ann", **record})


def srcs(plan: RenderPlan) -> list[str]:
    return [pl.layer.src for pl in plan.scenes[0].layers]  # type: ignore[union-attr]


def test_without_a_fetcher_a_url_is_refused_naming_its_variable(campaign: Campaign) -> None:
    plan = plan_for(campaign, avatar=ANN)
    with pytest.raises(AssetError) as info:
        localize(plan, None)
    assert info.value.field == "avatar"
    assert "is a URL" in info.value.message and "fetcher" in info.value.message


def test_without_a_fetcher_local_media_are_checked_and_kept(campaign: Campaign) -> None:
    # GIVEN a plan with local files only: no fetcher is needed, the paths stay as they are
    plan = plan_for(campaign, avatar="assets/avatar.png", logo="assets/red.png")
    assert srcs(localize(plan, None)) == srcs(plan)
    # AND a local file that is not what its layer needs is still refused, naming the variable
    (campaign.root / "assets" / "fake.png").write_bytes(b"#EXTM3U\n#EXTINF:1,\nx\n")
    with pytest.raises(AssetError) as info:
        localize(plan_for(campaign, avatar="assets/avatar.png", logo="assets/fake.png"), None)
    assert info.value.field == "logo" and "HLS playlist" in info.value.message


def test_each_distinct_url_is_fetched_once_and_replaced(campaign: Campaign) -> None:
    # GIVEN a plan naming the avatar's URL in two layers and the logo's in a third
    fetcher = RecordingFetcher(campaign.root / "assets" / "avatar.png")
    plan = plan_for(campaign, avatar=ANN, logo=LOGO)
    assert srcs(plan) == [ANN, ANN, LOGO]
    # WHEN it is localized
    done = localize(plan, fetcher)
    # THEN each URL was asked for once, as an image, for its variable
    assert fetcher.calls == [(ANN, "image", "avatar"), (LOGO, "image", "logo")]
    # AND every layer now names the local copy
    assert srcs(done) == [str(fetcher.picture)] * 3
    # AND localizing the result again asks for nothing more
    assert srcs(localize(done, fetcher)) == srcs(done)
    assert len(fetcher.calls) == 2
