"""Interactions and chapters: the template's checks (`reel validate`) and their resolution for
one recipient's plan (absolute times, personalized texts, conditions)."""

from __future__ import annotations

import pytest

from chalicelib.errors import TemplateError
from chalicelib.template.bind import bind, bind_values
from chalicelib.template.interactive import resolve
from chalicelib.template.library import load_template, validate_template_file
from tests.conftest import Campaign
from tests.interactive import INTERACTIVE, interactive_template


def fields(campaign: Campaign) -> dict[str, str]:
    return {p.field: p.message for p in validate_template_file(campaign.template)}


def test_the_interactive_campaign_is_valid(campaign: Campaign) -> None:
    campaign.write_template(interactive_template())
    assert fields(campaign) == {}


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("start: 0.1", "start: 1.5", "interactions[0].start", "not before the end of scene"),
        ("start: 0.1", "start: 0.5\n    duration: 0.8", "interactions[0].duration", "ends at 1.3s"),
        (
            "scene: outro\n    label",
            "scene: credits\n    label",
            "interactions[3].scene",
            "no scene",
        ),
        (
            "{id: bye, title: Goodbye, scene: outro}",
            "{id: bye, title: Goodbye, time: 3.4}",
            "chapters[2].time",
            "after the video's end (3.4s at the longest)",
        ),
        (
            "{id: bye, title: Goodbye, scene: outro}",
            "{id: bye, title: Goodbye, scene: outro, time: 0.6}",
            "chapters[2].time",
            "not before the end of scene 'outro'",
        ),
        (
            "action: {chapter: bye}",
            "action: {chapter: nowhere}",
            "interactions[1].action.chapter",
            "no chapter with id 'nowhere'",
        ),
        (
            "action: {chapter: bye}",
            "action: {seek: 9}",
            "interactions[1].action.seek",
            "after the video's end",
        ),
        (
            "value: pro,",
            "value: platinum,",
            "interactions[2].options[1].value",
            "'platinum' is not a value of 'plan'",
        ),
        (
            "variable: plan",
            "variable: tier",
            "interactions[2].options[0].value",
            "sets undeclared variable 'tier'",
        ),
        (
            "label: A quick poll",
            "label: 'Poll for {{ nick }}'",
            "interactions[3].label",
            "uses undeclared variable 'nick'",
        ),
        (
            "action: {open: /health}",
            "action: {open: 'javascript:alert(1)'}",
            "interactions[0].action.open",
            "must be http(s)",
        ),
    ],
)
def test_each_problem_names_its_field(
    campaign: Campaign, old: str, new: str, field: str, reason: str
) -> None:
    assert old in INTERACTIVE
    campaign.write_template(interactive_template(INTERACTIVE.replace(old, new, 1)))
    found = fields(campaign)
    assert field in found, found
    assert reason in found[field]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "{label: Pro, value: pro, chapter: bye}",
            "{label: Pro, value: basic}",
            "interactions[2].options",
        ),
        ("action: {open: /health}", "action: {open: /health, seek: 1}", "interactions[0].action"),
        (
            'options: ["1-10", "11-50"],\n         required: true',
            "required: true",
            "interactions[3].fields[0]",
        ),
        ("type: button", "type: slider", "interactions[0]"),
    ],
)
def test_structural_problems_name_their_field(
    campaign: Campaign, old: str, new: str, field: str
) -> None:
    assert old in INTERACTIVE
    campaign.write_template(interactive_template(INTERACTIVE.replace(old, new, 1)))
    found = fields(campaign)
    assert any(f.startswith(field) for f in found), found


def test_resolved_for_a_recipient(campaign: Campaign) -> None:
    campaign.write_template(interactive_template())
    lt = load_template(campaign.template)
    # GIVEN a basic-plan recipient: intro (0-1), greeting (1-2), outro (2-2.6)
    plan = bind(lt, {"first_name": "Ada"})
    values, _ = bind_values(lt, plan.record)
    interactions, chapters = resolve(lt.template, plan, values)
    assert [(c.id, c.title, c.time) for c in chapters] == [
        ("start", "Welcome", 0.0),
        ("hello", "Hello Ada", 1.0),
        ("bye", "Goodbye", 2.0),
    ]
    by_id = {i.id: i for i in interactions}
    assert (by_id["book"].start, by_id["book"].end, by_id["book"].label) == (1.1, 2.0, "Book, Ada")
    assert by_id["logo"].size == (0.25, 0.3125)  # 40×30 of 160×96
    assert [o.seek for o in by_id["pick_plan"].options] == [2.0, 2.0]
    assert (by_id["poll"].start, by_id["poll"].end) == (2.0, 2.6)
    # WHEN the pro scene plays too, the outro moves and so do its chapter and form
    pro = bind(lt, {"first_name": "Ada", "plan": "pro"})
    interactions, chapters = resolve(lt.template, pro, bind_values(lt, pro.record)[0])
    assert chapters[-1].time == 2.8
    assert {i.id: i.start for i in interactions}["poll"] == 2.8


def test_when_hides_an_interaction(campaign: Campaign) -> None:
    campaign.write_template(
        interactive_template(
            INTERACTIVE.replace("    id: book\n", "    id: book\n    when: avatar\n")
        )
    )
    lt = load_template(campaign.template)
    plan = bind(lt, {"first_name": "Ada"})
    interactions, _ = resolve(lt.template, plan, bind_values(lt, plan.record)[0])
    assert "book" not in {i.id for i in interactions}


def test_load_refuses_a_bad_interaction_with_its_path(campaign: Campaign) -> None:
    campaign.write_template(interactive_template(INTERACTIVE.replace("label: A quick poll", "")))
    with pytest.raises(TemplateError) as caught:
        load_template(campaign.template)
    assert any(p.field == "interactions[3].label" for p in caught.value.problems)
