"""`check_template`/`validate_template_file`: every problem, with its path and reason."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.template.library import validate_template_file
from tests.conftest import BASE_TEMPLATE, Campaign


def fields(campaign: Campaign) -> dict[str, str]:
    return {p.field: p.message for p in validate_template_file(campaign.template)}


def test_the_base_campaign_is_valid(campaign: Campaign) -> None:
    assert validate_template_file(campaign.template) == []


def test_missing_asset_is_reported_with_its_path(campaign: Campaign) -> None:
    text = campaign.template.read_text().replace(
        "      - {type: text,", "      - {type: image, src: assets/x.png}\n      - {type: text,"
    )
    campaign.write_template(text)
    assert fields(campaign) == {"scenes[1].layers[0].src": "file not found: assets/x.png"}


def test_every_problem_is_listed_not_just_the_first(campaign: Campaign) -> None:
    text = (
        campaign.template.read_text()
        .replace("Hi {{ first_name }}!", "Hi {{ nickname }}!")
        .replace("style: title", "style: headline")
        .replace("when: avatar", "when: 'avatar =='")
        .replace("- use: outro", "- use: credits")
    )
    campaign.write_template(text)
    found = fields(campaign)
    assert found["scenes[1].layers[0].text"] == "uses undeclared variable 'nickname'"
    assert found["scenes[1].layers[0].style"].startswith("unknown style 'headline'")
    assert "bad JMESPath expression" in found["scenes[1].layers[1].when"]
    assert found["scenes[3].use"] == "scene 'credits' not found in the library scenes/"


def test_problems_inside_library_scenes_name_the_file(campaign: Campaign) -> None:
    campaign.write_scene(
        "outro",
        """\
        id: outro
        duration: 0.6
        layers:
          - {type: audio, src: assets/missing.m4a, start: 1.0}
        """,
    )
    found = fields(campaign)
    assert (
        found["scenes[3].layers[0].src"]
        == "file not found: assets/missing.m4a (in scenes/outro.yaml)"
    )
    assert found["scenes[3].layers[0].start"].startswith("1s is not before the scene's end")


def test_assets_cannot_leave_the_campaign_folder(campaign: Campaign) -> None:
    outside = campaign.root.parent / "secret.png"
    outside.write_bytes(b"x")
    text = campaign.template.read_text().replace(
        "background: {color: '#102040'}", "background: {image: ../secret.png}"
    )
    campaign.write_template(text)
    assert "inside the campaign folder" in fields(campaign)["scenes[1].background.image"]


def test_yaml_syntax_errors_give_the_line(campaign: Campaign) -> None:
    campaign.template.write_text("id: x\nscenes: [\n  - {id: a\n")
    [problem] = validate_template_file(campaign.template)
    assert "invalid YAML at line" in problem.message


def test_bad_default_and_locale(campaign: Campaign) -> None:
    text = campaign.template.read_text().replace(
        "plan: {type: enum, values: [basic, pro], default: basic}",
        "plan: {type: enum, values: [basic, pro], default: gold}\n"
        "  when_: {type: date, locale: xx_YY}",
    )
    campaign.write_template(text)
    found = fields(campaign)
    assert "is not one of ['basic', 'pro']" in found["variables.plan.default"]
    assert found["variables.when_.locale"] == "unknown locale 'xx_YY'"


def test_crossfade_longer_than_a_scene(campaign: Campaign) -> None:
    text = campaign.template.read_text().replace(
        "transition: {type: cut}", "transition: {type: crossfade, duration: 0.9}"
    )
    campaign.write_template(text)
    assert "crossfade needs scenes longer" in fields(campaign)["transition.duration"]


def test_page_texts_are_checked(make_campaign: Callable[[str], Campaign]) -> None:
    c = make_campaign(
        BASE_TEMPLATE.replace(
            'title: "A video for {{ first_name }}"', 'title: "A video for {{ nickname }}"'
        ).replace("url: /health", "url: '{{ first_name | nope }}'")
    )
    problems = {p.field: p.message for p in validate_template_file(c.template)}
    assert problems["page.title"] == "uses undeclared variable 'nickname'"
    assert "nope" in problems["page.cta.url"]
