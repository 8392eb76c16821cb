"""Chart, SVG and Lottie layers drawn by the real engine (Pillow, resvg, rlottie, ffmpeg)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chalicelib import bootstrap
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.cli import app
from chalicelib.errors import DataError, TemplateError
from chalicelib.pipeline.folder import RESULTS, read_results
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.engine import cache_context, render, render_frame, render_run
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import plan_runs, run_key
from chalicelib.studio import service
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template, validate_template_file
from tests.conftest import Campaign, run_batch
from tests.integration.test_studio import _ssim
from tests.media import frame_at, probe

CHART_TEMPLATE = """\
id: charts
canvas: {width: 320, height: 192, fps: 10}
variables:
  first_name: {type: text}
  usage: {type: numbers, min: 0}
  total: {type: number}
transition: {type: cut}
scenes:
  - id: intro
    duration: 0.5
    background: {color: '#000000'}
  - id: month
    duration: 2.0
    background: {color: '#000000'}
    layers:
      - type: chart
        kind: bar
        values: "{{ usage }}"
        max: 10
        size: [200, 120]
        at: [0.5, 0.5]
        animate: 1.0
        style: {color: '#ff0000', show_values: false}
"""


def _frame(plan: object, at: float, tmp: Path) -> np.ndarray:
    out = tmp / f"f{at}.jpg"
    render_frame(plan, at, out, work=tmp)  # type: ignore[arg-type]
    with Image.open(out) as img:
        return np.asarray(img.convert("RGB")).astype(int)


def _red(px: np.ndarray) -> np.ndarray:
    return (px[..., 0] > 150) & (px[..., 1] < 80) & (px[..., 2] < 80)


def test_bars_grow_to_each_recipients_numbers(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN a bar chart of the recipient's numbers against a max of 10
    campaign.write_template(CHART_TEMPLATE)
    lt = load_template(campaign.template)
    plan = bind(lt, {"usage": [10, 5]})
    # WHEN frames are drawn as the chart enters and once it is built
    early = _frame(plan, 0.5, tmp_path)  # the chart's first frame: nothing grown yet
    middle = _frame(plan, 0.5 + 0.3, tmp_path)
    done = _frame(plan, 0.5 + 1.5, tmp_path)
    # THEN the bars grow: no red at first, some while building, most at the end
    assert _red(early).sum() < 20
    assert 50 < _red(middle).sum() < _red(done).sum()
    # AND the full bar (10 of 10) is twice as tall as the half one, in its own column
    cols = _red(done).sum(axis=0)
    left, right = cols[:160], cols[160:]
    assert left.max() == pytest.approx(2 * right.max(), rel=0.1)


def test_another_recipients_numbers_draw_another_chart(campaign: Campaign, tmp_path: Path) -> None:
    campaign.write_template(CHART_TEMPLATE)
    lt = load_template(campaign.template)
    a = _red(_frame(bind(lt, {"usage": [2, 2]}), 2.0, tmp_path)).sum()
    b = _red(_frame(bind(lt, {"usage": [8, 8]}), 2.0, tmp_path)).sum()
    assert b > 3 * a > 0


def test_a_chart_is_personal_and_keyed_by_its_values(campaign: Campaign) -> None:
    # GIVEN two recipients with different numbers, and two with the same
    campaign.write_template(CHART_TEMPLATE)
    lt = load_template(campaign.template)
    plans = [bind(lt, {"usage": u}) for u in ([1, 2], [1, 3], [1, 2])]
    profile = EncodingProfile.for_canvas(plans[0].canvas)
    context = cache_context()

    def personal_keys(plan: object) -> list[str]:
        runs = plan_runs(plan, profile)  # type: ignore[arg-type]
        return [run_key(r, profile, file_digest, context) for r in runs if r.personal]

    keys = [personal_keys(p) for p in plans]
    # THEN the chart's scene is a personal run, keyed by the numbers it draws
    assert plans[0].scenes[1].personal and len(keys[0]) == 1
    assert keys[0] != keys[1]
    assert keys[0] == keys[2]


def test_a_chart_video_through_the_cache(campaign: Campaign, out: Path) -> None:
    campaign.write_template(CHART_TEMPLATE)
    lt = load_template(campaign.template)
    cache = SegmentCache(LocalBlobStore(out / "blobs"))
    plan = bind(lt, {"usage": [10, 10, 10]})
    result = render(plan, out / "a.mp4", cache=cache)
    assert probe(result.path).frames == 25 and result.segments == 2
    last = frame_at(result.path, 24)
    assert _red(last.astype(int)).sum() > 1000


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ("12;abc;3", "item 2"),
        ([1] * 61, "limit is 60"),
        ([1, -4], "below the minimum"),
        ({"a": 1}, "list of numbers"),
    ],
)
def test_bad_chart_values_are_invalid_data_naming_the_field(
    campaign: Campaign, usage: object, reason: str
) -> None:
    campaign.write_template(CHART_TEMPLATE)
    lt = load_template(campaign.template)
    with pytest.raises(DataError) as err:
        bind(lt, {"usage": usage})
    assert err.value.code == "invalid_data"
    assert err.value.field == "usage"
    assert reason in str(err.value)


def test_a_text_variable_that_is_not_numbers_is_invalid_data(campaign: Campaign) -> None:
    text = CHART_TEMPLATE.replace("usage: {type: numbers, min: 0}", "usage: {type: text}")
    campaign.write_template(text)
    with pytest.raises(DataError) as err:
        bind(load_template(campaign.template), {"usage": "4;x"})
    assert err.value.field == "usage"
    assert "item 2" in str(err.value)


# ── SVG ────────────────────────────────────────────────────────────────────────────────────

SVG_TEMPLATE = """\
id: svgs
canvas: {width: 320, height: 192, fps: 10}
variables:
  first_name: {type: text}
  brand: {type: color, default: '#00ff00'}
transition: {type: cut}
scenes:
  - id: badge
    duration: 1.0
    background: {color: '#000000'}
    layers:
      - {type: svg, src: assets/badge.svg, size: [200, 100], at: [0.5, 0.5]}
"""

BADGE = """\
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 20 10">
  <defs><rect id="r" width="10" height="10"/></defs>
  <use xlink:href="#r" fill="#0000ff"/>
  <rect x="10" width="10" height="10" fill="{{ brand }}"/>
  <text x="5" y="8" font-size="3">Hi {{ first_name }}</text>
</svg>
"""


def _svg_campaign(campaign: Campaign, svg: str = BADGE) -> Campaign:
    (campaign.root / "assets" / "badge.svg").write_text(svg, encoding="utf-8")
    campaign.write_template(SVG_TEMPLATE)
    return campaign


def test_an_svg_is_drawn_crisp_with_its_fill_from_data(campaign: Campaign, tmp_path: Path) -> None:
    lt = load_template(_svg_campaign(campaign).template)
    plan = bind(lt, {"first_name": "Ann", "brand": "#ff0000"})
    assert plan.scenes[0].personal
    px = _frame(plan, 0.5, tmp_path)
    # the left half of the badge is the blue <use>d rect, the right half the data's red
    assert px[96, 110, 2] > 200 and px[96, 110, 0] < 60
    assert _red(px)[60:130, 170:260].mean() > 0.9
    # another colour from data, another picture
    other = _frame(bind(lt, {"first_name": "Ann", "brand": "#00ff00"}), 0.5, tmp_path)
    assert other[96, 210, 1] > 200 and other[96, 210, 0] < 60


@pytest.mark.parametrize(
    ("svg", "where", "reason"),
    [
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "/svg/script[1]",
            "<script> is not allowed",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
            '<image xlink:href="file:///etc/passwd"/></svg>',
            "/svg/image[1]/@href",
            "#ids",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(http://x/y)"/></svg>',
            "/svg/rect[1]/@style",
            "url(#id)",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><rect onload="x()"/></svg>',
            "/svg/rect[1]/@onload",
            "event handlers",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&a;</text></svg>',
            "/",
            "refused",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><rect width="{{ first_name }}"/></svg>',
            "/svg/rect[1]/@width",
            "text and fill only",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg"><g><rect></g></svg>', "line 1", "well-formed"),
        ("<html/>", "/", "not <svg>"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg">' + "<g/>" * 5001 + "</svg>",
            "/svg/g[",
            "elements",
        ),
    ],
)
def test_an_unsafe_or_broken_svg_is_a_template_error_naming_file_and_path(
    campaign: Campaign, svg: str, where: str, reason: str
) -> None:
    lt = load_template(_svg_campaign(campaign, svg).template)
    # WHEN it is bound for a recipient THEN a TemplateError names the file and the XML path
    with pytest.raises(TemplateError) as err:
        bind(lt, {"first_name": "Ann"})
    assert "badge.svg" in str(err.value) and where in str(err.value) and reason in str(err.value)
    assert err.value.field == "scenes[0].layers[0].src"
    # AND `reel validate` reports it
    problems = validate_template_file(campaign.template)
    assert any(p.field == "scenes[0].layers[0].src" and reason in p.message for p in problems)


def test_a_fill_from_data_that_is_not_a_colour_is_invalid_data(campaign: Campaign) -> None:
    text = SVG_TEMPLATE.replace("brand: {type: color, default: '#00ff00'}", "brand: {type: text}")
    campaign = _svg_campaign(campaign)
    campaign.write_template(text)
    with pytest.raises(DataError) as err:
        bind(load_template(campaign.template), {"first_name": "A", "brand": "url(http://x)"})
    assert err.value.field == "brand"


def test_an_svg_path_cannot_come_from_data(campaign: Campaign) -> None:
    campaign.write_template(SVG_TEMPLATE.replace("assets/badge.svg", "'{{ first_name }}.svg'"))
    problems = validate_template_file(campaign.template)
    assert any("cannot come from data" in p.message for p in problems)


# ── Lottie ─────────────────────────────────────────────────────────────────────────────────

DEMO_LOTTIE = Path(__file__).resolve().parents[2] / "examples" / "demo" / "assets" / "intro.json"

LOTTIE_TEMPLATE = """\
id: lotties
canvas: {width: 320, height: 192, fps: 10}
variables:
  first_name: {type: text}
  brand: {type: color, default: '#19b3a6'}
transition: {type: cut}
scenes:
  - id: intro
    duration: 3.0
    background: {color: '#000000'}
    layers:
      - {type: lottie, src: assets/intro.json, size: [320, 160], at: [0.5, 0.5]LAYER}
"""


def _lottie_campaign(campaign: Campaign, extra: str = "", data: str | None = None) -> Campaign:
    (campaign.root / "assets" / "intro.json").write_text(
        data if data is not None else DEMO_LOTTIE.read_text(), encoding="utf-8"
    )
    campaign.write_template(LOTTIE_TEMPLATE.replace("LAYER", extra))
    return campaign


def _teal(px: np.ndarray) -> np.ndarray:
    # the demo's teal (25, 179, 166), not its sky blue (79, 195, 247)
    return (px[..., 1] > 120) & (px[..., 2] > 110) & (px[..., 2] < 215) & (px[..., 0] < 60)


def test_a_static_lottie_plays_and_is_one_shared_run(campaign: Campaign, tmp_path: Path) -> None:
    lt = load_template(_lottie_campaign(campaign).template)
    plan = bind(lt, {"first_name": "Ann"})
    # THEN without replacements from data it is static: one run, shared by every recipient
    assert not plan.scenes[0].personal
    profile = EncodingProfile.for_canvas(plan.canvas)
    assert [r.personal for r in plan_runs(plan, profile)] == [False]
    # AND it animates: the ring draws itself (frame 0: nothing; 2 s in: the ring is whole)
    first, later = _frame(plan, 0.0, tmp_path), _frame(plan, 2.0, tmp_path)
    assert _teal(first).sum() < 20 < 400 < _teal(later).sum()


def test_colour_and_text_replacements_make_it_personal(campaign: Campaign, tmp_path: Path) -> None:
    extra = (
        ', colors: {"Ring.Group 1.Stroke 1": "#ff0000", "**.Fill 1": "{{ brand }}"}'
        ', texts: {Greeting: "Hi {{ first_name }}"}'
    )
    lt = load_template(_lottie_campaign(campaign, extra).template)
    plan = bind(lt, {"first_name": "Ann", "brand": "#ff0000"})
    assert plan.scenes[0].personal
    px = _frame(plan, 2.5, tmp_path)
    # the ring's stroke and every fill are now red: no teal left (the swoosh stays sky blue)
    assert _teal(px).sum() < 20 and _red(px).sum() > 500
    # AND the greeting is drawn where the text layer is (top band), where rlottie draws nothing
    plain = _frame(bind(load_template(_lottie_campaign(campaign).template), {}), 2.5, tmp_path)
    band = (slice(16, 40), slice(100, 220))
    assert np.abs(px[band] - plain[band]).sum() > 2000
    # AND another recipient's values give another key
    profile = EncodingProfile.for_canvas(plan.canvas)
    context = cache_context()
    other = bind(lt, {"first_name": "Bob", "brand": "#ff0000"})
    keys = [run_key(plan_runs(p, profile)[0], profile, file_digest, context) for p in (plan, other)]
    assert keys[0] != keys[1]


def test_play_a_marker_segment_at_double_speed(campaign: Campaign, tmp_path: Path) -> None:
    extra = ", play: {from: in, to: in}, speed: 2"
    lt = load_template(_lottie_campaign(campaign, extra).template)
    plan = bind(lt, {})
    # the 2 s `in` segment at speed 2 is over in 1 s: at 1.5 s its last picture is held
    assert _teal(_frame(plan, 1.0, tmp_path)).sum() > 400
    np.testing.assert_allclose(_frame(plan, 1.5, tmp_path), _frame(plan, 2.5, tmp_path), atol=8)


def test_a_looping_lottie_renders_a_video(campaign: Campaign, out: Path) -> None:
    lt = load_template(_lottie_campaign(campaign, ", loop: true, play: {from: idle}").template)
    result = render(bind(lt, {}), out / "l.mp4")
    assert probe(result.path).frames == 30


@pytest.mark.parametrize(
    ("data", "where", "reason"),
    [
        ("{not json", "$", "not JSON"),
        ("[]", "$", "JSON object"),
        ('{"ip":0,"op":10,"fr":30,"w":100,"h":100}', "$.layers", "missing"),
        ('{"ip":0,"op":100000,"fr":30,"w":100,"h":100,"layers":[]}', "$.op", "limit"),
        ('{"ip":0,"op":10,"fr":30,"w":99999,"h":100,"layers":[]}', "$.w", "px"),
        ('{"ip":0,"op":10,"fr":30,"w":100,"h":100,"layers":[{"ty":"x"}]}', "$.layers[0].ty", ""),
        (
            '{"ip":0,"op":10,"fr":30,"w":100,"h":100,"layers":'
            + '[{"ty":4}'
            + ',{"ty":4}' * 600
            + "]}",
            "$.layers[500]",
            "over 500 layers",
        ),
    ],
)
def test_a_malformed_lottie_is_a_template_error_naming_file_and_json_path(
    campaign: Campaign, data: str, where: str, reason: str
) -> None:
    lt = load_template(_lottie_campaign(campaign, data=data).template)
    with pytest.raises(TemplateError) as err:
        bind(lt, {})
    assert f"intro.json: {where}" in str(err.value) and reason in str(err.value)
    assert any(where in p.message for p in validate_template_file(campaign.template))


def test_an_unknown_marker_text_layer_or_colour_is_reported(campaign: Campaign) -> None:
    extra = ', play: {from: nope}, texts: {Nobody: "x"}'
    _lottie_campaign(campaign, extra)
    messages = " | ".join(p.message for p in validate_template_file(campaign.template))
    assert "no marker 'nope'" in messages and "no text layer named 'Nobody'" in messages
    extra = ', colors: {"Ring.Group 1.Stroke 1": "{{ first_name }}"}'
    with pytest.raises(DataError) as err:
        bind(load_template(_lottie_campaign(campaign, extra).template), {"first_name": "Ann"})
    assert err.value.field == "first_name"


def test_expressions_are_a_warning_of_reel_validate(campaign: Campaign) -> None:
    data = json.loads(DEMO_LOTTIE.read_text())
    data["layers"][1]["ks"]["o"]["x"] = "wiggle(2, 30)"
    _lottie_campaign(campaign, data=json.dumps(data))
    assert validate_template_file(campaign.template) == []
    result = CliRunner().invoke(app, ["validate", str(campaign.template)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "$.layers[1].ks.o.x" in result.output
    assert "expression" in result.output


# ── the Studio ─────────────────────────────────────────────────────────────────────────────

ALL_TEMPLATE = """\
id: motion
canvas: {width: 320, height: 192, fps: 10}
variables:
  first_name: {type: text}
  brand: {type: color, default: '#00ff00'}
  usage: {type: numbers}
transition: {type: cut}
scenes:
  - id: all
    duration: 2.0
    background: {color: '#000000'}
    layers:
      - {type: lottie, src: assets/intro.json, size: [160, 80], at: [0.25, 0.25]}
      - {type: svg, src: assets/badge.svg, size: [100, 50], at: [0.75, 0.25]}
      - type: chart
        values: "{{ usage }}"
        max: 10
        size: [200, 80]
        at: [0.5, 0.75]
        animate: 0.5
        style: {color: '#ff0000', show_values: false}
"""


@pytest.mark.parametrize("at", [0.2, 1.5])
def test_the_studio_previews_the_motion_layers_as_the_video_shows_them(
    campaign: Campaign, tmp_path: Path, at: float
) -> None:
    # GIVEN a scene with a Lottie, an SVG and a chart, and a recipient's full render
    _svg_campaign(campaign)
    _lottie_campaign(campaign)
    campaign.write_template(ALL_TEMPLATE)
    record = {"first_name": "Ada", "brand": "#ff0000", "usage": [10, 4]}
    video = render(bind(load_template(campaign.template), record), tmp_path / "full.mp4").path
    decoded = tmp_path / "decoded.png"
    index = round(at * 10)
    ff.run(["-y", "-i", str(video), "-vf", f"select=eq(n\\,{index})", "-frames:v", "1",
            "-pix_fmt", "rgb24", str(decoded)])  # fmt: skip
    # WHEN the Studio draws the frame at the same time
    ws = service.Workspace(service.LOCAL, campaign.root.resolve(), True)
    jpeg, drawn_index = service.frame(bootstrap.backends(), service.Draft(ws), record, at, tmp_path)
    drawn = tmp_path / "drawn.jpg"
    drawn.write_bytes(jpeg)
    # THEN it is that frame, with the three layers in it
    assert drawn_index == index
    assert _ssim(drawn, decoded) >= 0.98
    with Image.open(drawn) as img:
        px = np.asarray(img.convert("RGB")).astype(int)
    assert _red(px[96:, :]).sum() > 300  # the bars (most of the way up at 0.2 s already)
    assert _red(px[:96, 160:]).sum() > 300  # the SVG's red half


# ── a batch: bad motion data fails its recipient alone ─────────────────────────────────────


def test_bad_chart_data_and_a_bad_fill_fail_their_recipients_alone(
    campaign: Campaign, tmp_path: Path
) -> None:
    # GIVEN a batch whose rows feed a chart, an SVG fill and a Lottie colour
    _svg_campaign(campaign)
    _lottie_campaign(campaign)
    text = ALL_TEMPLATE.replace(
        "{type: lottie, src: assets/intro.json,",
        '{type: lottie, src: assets/intro.json, colors: {"**.Fill 1": "{{ brand }}"},',
    ).replace("brand: {type: color, default: '#00ff00'}", "brand: {type: text, default: '#00ff00'}")
    campaign.write_template(text)
    data = tmp_path / "r.csv"
    data.write_text(
        "recipient_id,first_name,usage,brand\n"
        "ok,Ann,4;5,#ff0000\n"
        "letters,Bo,4;five,#ff0000\n"
        "many,Cy," + ";".join(["1"] * 61) + ",#ff0000\n"
        "fill,Di,4;5,url(http://x)\n"
        "ok2,Ed,1;2,\n"
    )
    # WHEN it runs
    summary = run_batch(campaign.template, data, tmp_path / "out", workers=1)
    # THEN each bad row fails alone, as invalid data naming its variable; the others render
    results = read_results(tmp_path / "out" / RESULTS)
    assert [(r.recipient_id, r.status.value, r.field) for r in results] == [
        ("ok", "rendered", None),
        ("letters", "failed", "usage"),
        ("many", "failed", "usage"),
        ("fill", "failed", "brand"),
        ("ok2", "rendered", None),
    ]
    assert summary.counts["failed"] == 3
    assert "item 2" in (results[1].reason or "")


def _image_lottie(embedded: bool) -> str:
    """A 100×100 Lottie showing image asset `img_0` (a 1-pixel blue PNG, or a file beside it)."""
    import base64
    import io

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (0, 0, 255)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    asset = {"id": "img_0", "w": 100, "h": 100, "u": "", "p": uri, "e": 1}
    if not embedded:
        asset.update({"u": "images/", "p": "img_0.png", "e": 0})
    ks = {"o": {"a": 0, "k": 100}, "p": {"a": 0, "k": [50, 50, 0]}, "a": {"a": 0, "k": [50, 50, 0]},
          "s": {"a": 0, "k": [100, 100, 100]}, "r": {"a": 0, "k": 0}}  # fmt: skip
    layer = {
        "ty": 2,
        "ind": 1,
        "nm": "Photo",
        "refId": "img_0",
        "ks": ks,
        "ip": 0,
        "op": 30,
        "st": 0,
    }
    doc = {"v": "5.7.4", "fr": 30, "ip": 0, "op": 30, "w": 100, "h": 100, "assets": [asset],
           "layers": [layer]}  # fmt: skip
    return json.dumps(doc)


def test_an_image_asset_is_replaced_by_a_campaign_file(campaign: Campaign, tmp_path: Path) -> None:
    extra = ", images: {img_0: assets/red.png}"
    lt = load_template(_lottie_campaign(campaign, extra, _image_lottie(True)).template)
    px = _frame(bind(lt, {}), 0.5, tmp_path)
    # the blue placeholder is gone: the box (160×160, centred) shows the red image
    assert _red(px[20:170, 90:230]).mean() > 0.9
    # without the replacement, the embedded blue picture shows
    plain = _frame(
        bind(load_template(_lottie_campaign(campaign, "", _image_lottie(True)).template), {}),
        0.5,
        tmp_path,
    )
    assert plain[96, 160, 2] > 200 and plain[96, 160, 0] < 60


def test_an_image_file_beside_the_animation_is_never_read(
    campaign: Campaign, tmp_path: Path
) -> None:
    (campaign.root / "assets" / "images").mkdir()
    (campaign.root / "assets" / "images" / "img_0.png").write_bytes(b"not read")
    lt = load_template(_lottie_campaign(campaign, "", _image_lottie(False)).template)
    with pytest.raises(TemplateError, match=r"\$\.assets\[0\]\.p: an image file beside"):
        bind(lt, {})
    assert any("image file beside" in p.message for p in validate_template_file(campaign.template))


def test_an_svg_resvg_cannot_size_is_a_template_error(campaign: Campaign, tmp_path: Path) -> None:
    empty = '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>'
    plan = bind(load_template(_svg_campaign(campaign, empty).template), {"first_name": "A"})
    with pytest.raises(TemplateError, match=r"badge\.svg: /svg: SVG has an invalid size"):
        _frame(plan, 0.5, tmp_path)


def test_an_svg_claiming_a_huge_size_is_drawn_at_the_layers(
    campaign: Campaign, tmp_path: Path
) -> None:
    tall = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1e9" height="1e12" viewBox="0 0 1 1000">'
        '<rect width="1" height="1000" fill="#ff0000"/></svg>'
    )
    plan = bind(load_template(_svg_campaign(campaign, tall).template), {"first_name": "A"})
    px = _frame(plan, 0.5, tmp_path)
    assert 0 < _red(px).sum() < 200 * 100  # a sliver inside the 200×100 box, nothing more


def test_a_lottie_too_big_to_draw_is_refused_naming_the_layer(
    campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.render import engine

    monkeypatch.setattr(engine, "MAX_SEQUENCE_PIXELS", 320 * 160 * 10)  # 10 frames of the box
    lt = load_template(_lottie_campaign(campaign, ", loop: true").template)
    with pytest.raises(TemplateError, match="30 frames of 320×160") as err:
        render(bind(lt, {}), tmp_path / "x.mp4")
    assert err.value.field == "intro.layers[0]"


def test_a_window_draws_only_the_pictures_it_shows(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN a 2 s Lottie segment in a 3 s scene (at 10 fps: 21 pictures, then the last held)
    lt = load_template(_lottie_campaign(campaign, ", play: {from: in, to: in}").template)
    plan = bind(lt, {})
    for at, pictures in ((2.5, 1), (1.95, 1), (0.0, 1)):
        work = tmp_path / f"w{at}"
        work.mkdir()
        # WHEN one frame is drawn
        render_frame(plan, at, work / "f.jpg", work=work)
        # THEN only its picture was drawn (320×160 RGBA), not the whole animation
        [seq] = work.glob("seq_*.rgba")
        assert seq.stat().st_size == pictures * 320 * 160 * 4
    # AND the whole scene's run draws each picture once: 21 of them
    work = tmp_path / "all"
    work.mkdir()
    profile = EncodingProfile.for_canvas(plan.canvas)
    [run] = plan_runs(plan, profile)
    render_run(run, profile, work, work / "run.mp4")
    [seq] = work.glob("seq_*.rgba")
    assert seq.stat().st_size == 21 * 320 * 160 * 4
    assert probe(work / "run.mp4").frames == 30
