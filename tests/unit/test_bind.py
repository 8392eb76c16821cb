"""Binding a record to a plan: coercion per type, defaults, conditions, interpolation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from chalicelib.errors import DataError, TemplateError
from chalicelib.template.bind import bind
from chalicelib.template.expr import interpolate
from chalicelib.template.library import load_template, validate_template_file
from chalicelib.template.model import Variable
from chalicelib.template.values import coerce
from tests.conftest import Campaign


def var(**kw: Any) -> Variable:
    return Variable.model_validate(kw)


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ({"type": "text"}, "  Zoë  ", "Zoë"),
        ({"type": "text"}, 42, "42"),
        ({"type": "text"}, "a\r\nb", "a\nb"),
        ({"type": "number"}, "1_200.50", 1200.5),
        ({"type": "number"}, "7", 7),
        ({"type": "number", "min": 0, "max": 10}, 10, 10),
        ({"type": "date"}, "2026-03-01", dt.date(2026, 3, 1)),
        ({"type": "date"}, "2026-03-01T10:00:00Z", dt.date(2026, 3, 1)),
        ({"type": "date", "input_format": "%d/%m/%Y"}, "01/03/2026", dt.date(2026, 3, 1)),
        ({"type": "color"}, "#ABC", "#aabbcc"),
        ({"type": "boolean"}, "Yes", True),
        ({"type": "boolean"}, 0, False),
        ({"type": "enum", "values": ["basic", "pro"]}, "Pro", "pro"),
        ({"type": "image"}, " assets/a.png ", "assets/a.png"),
    ],
)
def test_coercion(variable: dict[str, Any], raw: Any, expected: Any) -> None:
    assert coerce(var(**variable), raw) == expected


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ({"type": "text", "max_length": 5}, "abcdef", "is 6 characters long; the limit is 5"),
        ({"type": "text"}, "x" * 501, "the limit is 500"),
        ({"type": "text"}, "a\x00b", "control character U+0000"),
        ({"type": "text"}, ["a"], "expected text"),
        ({"type": "number"}, "NaN", "finite"),
        ({"type": "number"}, float("inf"), "finite"),
        ({"type": "number"}, True, "got a boolean"),
        ({"type": "number", "max": 3}, 4, "above the maximum 3"),
        ({"type": "number"}, "12abc", "expected a number"),
        ({"type": "date"}, "31/12/2026", "not a date in ISO 8601"),
        ({"type": "color"}, "blue", "not a colour"),
        ({"type": "boolean"}, "maybe", "expected a boolean"),
        ({"type": "enum", "values": ["a"]}, "b", "is not one of ['a']"),
    ],
)
def test_bad_values_say_why(variable: dict[str, Any], raw: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        coerce(var(**variable), raw)


def test_required_field_missing_names_the_field(campaign: Campaign) -> None:
    lt = load_template(campaign.template)
    with pytest.raises(DataError) as info:
        bind(lt, {"first_name": "   ", "plan": "gold"})
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("first_name", "is required"),
        ("plan", "'gold' is not one of ['basic', 'pro']"),
    ]
    assert info.value.field == "first_name"


def test_unused_fields_are_ignored_and_defaults_applied(campaign: Campaign) -> None:
    plan = bind(
        load_template(campaign.template), {"first_name": "Ann", "crm_owner": "x", "score": [1]}
    )
    assert plan.record == {"first_name": "Ann", "plan": "basic", "avatar": None}


def test_conditions_choose_scenes_and_layers(campaign: Campaign) -> None:
    lt = load_template(campaign.template)
    basic = bind(lt, {"first_name": "Ann"})
    pro = bind(lt, {"first_name": "Ann", "plan": "pro", "avatar": "assets/avatar.png"})
    assert [s.id for s in basic.scenes] == ["intro", "greeting", "outro"]
    assert [s.id for s in pro.scenes] == ["intro", "greeting", "pro_offer", "outro"]
    assert pro.duration == pytest.approx(basic.duration + 0.8)
    assert len(basic.scenes[1].layers) == 1 and len(pro.scenes[1].layers) == 2
    assert pro.scenes[1].layers[1].layer.src == str(campaign.root / "assets" / "avatar.png")


def test_text_is_interpolated_and_data_is_never_evaluated(campaign: Campaign) -> None:
    plan = bind(load_template(campaign.template), {"first_name": "{{ plan }} %{pts} \\ 'x':"})
    [text] = plan.scenes[1].layers
    assert text.layer.text == "Hi {{ plan }} %{pts} \\ 'x':!"  # type: ignore[union-attr]


def test_personal_flags(campaign: Campaign) -> None:
    record = {"first_name": "Ann", "plan": "pro", "avatar": "assets/avatar.png"}
    plan = bind(load_template(campaign.template), record)
    # the pro offer is conditional, but looks the same for everyone who gets it
    assert [s.personal for s in plan.scenes] == [False, True, False, False]
    assert [pl.personal for pl in plan.scenes[1].layers] == [True, True]


def test_crossfades_overlap_and_fades_do_not(campaign: Campaign) -> None:
    text = campaign.template.read_text()
    campaign.write_template(text.replace("{type: cut}", "{type: crossfade, duration: 0.2}"))
    crossfaded = bind(load_template(campaign.template), {"first_name": "A"})
    campaign.write_template(text.replace("{type: cut}", "{type: fade, duration: 0.2}"))
    faded = bind(load_template(campaign.template), {"first_name": "A"})
    assert faded.duration == pytest.approx(2.6)
    assert crossfaded.duration == pytest.approx(2.6 - 2 * 0.2)
    assert [s.start for s in crossfaded.scenes] == pytest.approx([0, 0.8, 1.6])


def test_audio_layers_become_cues_on_the_timeline(campaign: Campaign) -> None:
    plan = bind(load_template(campaign.template), {"first_name": "A"})
    [cue] = plan.cues
    assert (cue.start, cue.duration, cue.volume) == (2.0, 0.6, 0.8)


@pytest.mark.parametrize(
    ("avatar", "reason"),
    [
        ("../../etc/passwd", "inside the campaign folder"),
        ("/etc/passwd", "inside the campaign folder"),
        ("assets/nope.png", "file not found"),
        ("assets/../../x.png", "inside the campaign folder"),
        ("file:///etc/passwd", "file: URLs are not allowed"),
        ("data:image/png;base64,iVBORw0KGgo=", "data: URLs are not allowed"),
        ("ftp://example.com/a.png", "ftp: URLs are not allowed"),
        ("gopher://example.com:70/_x", "gopher: URLs are not allowed"),
        ("https://user:pw@example.com/a.png", "credentials"),
        ("https:///a.png", "no host"),
    ],
)
def test_bad_asset_paths_in_data_are_data_errors(
    campaign: Campaign, avatar: str, reason: str
) -> None:
    with pytest.raises(DataError, match=reason) as info:
        bind(load_template(campaign.template), {"first_name": "A", "avatar": avatar})
    assert info.value.field == "avatar"


def test_a_url_from_data_is_kept_for_the_fetcher(campaign: Campaign) -> None:
    url = "https://cdn.example.com/people/ann.png?v=2"
    plan = bind(load_template(campaign.template), {"first_name": "A", "avatar": url})
    assert plan.scenes[1].layers[1].layer.src == url  # type: ignore[union-attr]
    assert plan.record["avatar"] == url


def test_a_url_the_template_writes_is_never_fetched(campaign: Campaign) -> None:
    # GIVEN a template whose default (not the record) is a URL
    text = campaign.template.read_text().replace(
        "avatar: {type: image}", "avatar: {type: image, default: 'https://cdn.example.com/a.png'}"
    )
    campaign.write_template(text)
    with pytest.raises(TemplateError, match="not fetched") as info:
        bind(load_template(campaign.template), {"first_name": "A"})
    assert info.value.field == "scenes[1].layers[1].src"
    # AND checking the template says so first, as it does for a URL around a value
    spelled = text.replace('src: "{{ avatar }}"', 'src: "https://cdn.example.com/{{ avatar }}"')
    campaign.write_template(spelled)
    found = {p.field: p.message for p in validate_template_file(campaign.template)}
    assert set(found) == {"variables.avatar.default", "scenes[1].layers[1].src"}
    assert all("not fetched" in m for m in found.values())
    campaign.write_template(text)
    # AND a URL made of a text value is refused, naming that value's variable
    campaign.write_template(text.replace('src: "{{ avatar }}"', 'src: "{{ first_name }}"'))
    with pytest.raises(DataError, match="whole value of an image") as data_info:
        bind(load_template(campaign.template), {"first_name": "https://x.example/a.png"})
    assert data_info.value.field == "first_name"


def test_symlinks_out_of_the_campaign_are_refused(campaign: Campaign, tmp_path: Any) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    (campaign.root / "assets" / "link.png").symlink_to(secret)
    with pytest.raises(DataError, match="leaves the campaign folder"):
        bind(load_template(campaign.template), {"first_name": "A", "avatar": "assets/link.png"})
    # AND a linked folder is no way out either
    (campaign.root / "assets" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DataError, match="leaves the campaign folder") as info:
        record = {"first_name": "A", "avatar": "assets/elsewhere/secret.png"}
        bind(load_template(campaign.template), record)
    assert info.value.field == "avatar"
    # AND a link that stays inside the campaign is followed
    (campaign.root / "assets" / "me.png").symlink_to(campaign.root / "assets" / "avatar.png")
    plan = bind(load_template(campaign.template), {"first_name": "A", "avatar": "assets/me.png"})
    assert plan.scenes[1].layers[1].layer.src == str(campaign.root / "assets" / "avatar.png")  # type: ignore[union-attr]


def test_a_template_path_the_file_system_cannot_open_is_a_template_error(
    campaign: Campaign,
) -> None:
    # GIVEN a background image path longer than a file name may be, written in the template
    scene = campaign.root / "scenes" / "pro_offer.yaml"
    scene.write_text(scene.read_text().replace("assets/red.png", "assets/" + "r" * 300 + ".png"))
    # THEN binding (without checking the template first) names the path, not an OSError
    with pytest.raises(TemplateError, match="File name too long") as info:
        bind(load_template(campaign.template), {"first_name": "A", "plan": "pro"})
    assert info.value.field.endswith("background.image")


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("{{ n | upper }}", {"n": "zoë"}, "ZOË"),
        ("{{ n | title }}", {"n": "mary ann"}, "Mary Ann"),
        ("{{ x | number(2) }}", {"x": 1234.5}, "1,234.50"),
        ("{{ x | currency('EUR') }}", {"x": 9.5}, "€9.50"),
        ("{{ x | currency('EUR', 'fr_FR') }}", {"x": 9.5}, "9,50\xa0€"),
        ("{{ d | date('d MMMM y') }}", {"d": dt.date(2026, 3, 1)}, "1 March 2026"),
        ("{{ d | date('d MMMM y', 'de_DE') }}", {"d": dt.date(2026, 3, 1)}, "1 März 2026"),
    ],
)
def test_filters(text: str, values: dict[str, Any], expected: str) -> None:
    assert interpolate(text, values) == expected


def test_statements_are_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("not {% statements %}")):
        interpolate("{% for i in range(10) %}x{% endfor %}{{ a }}", {"a": 1})


def test_a_condition_that_drops_every_scene(campaign: Campaign) -> None:
    campaign.write_template(
        """\
        id: t
        canvas: {width: 160, height: 96, fps: 10}
        variables: {flag: {type: boolean, default: false}}
        scenes: [{id: a, duration: 1, when: flag}]
        """
    )
    with pytest.raises(DataError, match="no scene's condition holds"):
        bind(load_template(campaign.template), {})


def test_runtime_template_errors_are_template_errors(campaign: Campaign) -> None:
    campaign.write_template(
        """\
        id: t
        canvas: {width: 160, height: 96, fps: 10}
        variables: {name: {type: text, default: x}}
        scenes: [{id: a, duration: 1, layers: [{type: text, text: "{{ name | currency }}"}]}]
        """
    )
    with pytest.raises(DataError, match="needs a number") as info:
        bind(load_template(campaign.template), {"name": "Ann"})
    assert info.value.field == "name"
    assert isinstance(info.value, DataError) and not isinstance(info.value, TemplateError)
