"""Campaign rules: validated like templates (every problem with its path), matched with
JMESPath over the event and the recipient's aggregate, params interpolated."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chalicelib.connectors.rules import CampaignRules, find_rules, load_rules, matching
from chalicelib.errors import TemplateError
from tests.conftest import Campaign


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_matching_rules_and_their_params(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """\
            rules:
              - id: engaged
                when: "event.kind == 'progress' && event.progress >= `75`"
                do:
                  - connector: hubspot
                    action: set_property
                    params: {properties: {video_engaged: "true", pct: "{{ event.progress }}"}}
              - id: clicked
                when: "event.kind == 'cta_click' && recipient.max_progress > `0`"
                do:
                  - {connector: salesforce, action: create_task,
                     params: {subject: "Call {{ recipient_id }} ({{ campaign_id }})"}}
                  - {connector: webhook, action: event}
            """,
        )
    )
    base = {"recipient_id": "ada", "campaign_id": "welcome", "recipient": {"max_progress": 40}}
    progress = {**base, "event": {"kind": "progress", "progress": 80}}
    [(rule, index, action)] = matching(rules, progress)
    assert (rule.id, index, action.connector) == ("engaged", 0, "hubspot")
    assert action.params == {"properties": {"video_engaged": "true", "pct": "80"}}
    assert matching(rules, {**base, "event": {"kind": "progress", "progress": 70}}) == []
    click = matching(rules, {**base, "event": {"kind": "cta_click"}})
    assert [(r.id, i, a.connector) for r, i, a in click] == [
        ("clicked", 0, "salesforce"),
        ("clicked", 1, "webhook"),
    ]
    assert click[0][2].params == {"subject": "Call ada (welcome)"}


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "rules: [{id: a, when: 'event.kind ==', do: [{connector: webhook, action: e}]}]",
            "rules[0].when",
            "JMESPath",
        ),
        (
            "rules: [{id: a, when: 'true', do: [{connector: fax, action: e}]}]",
            "rules[0].do[0].connector",
            "webhook",
        ),
        ("rules: [{id: a, when: 'true', do: []}]", "rules[0].do", "at least 1"),
        (
            "rules: [{id: a, when: 't', do: [{connector: webhook, action: e}]},"
            " {id: a, when: 't', do: [{connector: webhook, action: e}]}]",
            "rules",
            "unique",
        ),
        (
            "rules: [{id: a, when: 't', do: [{connector: webhook, action: e,"
            " params: {x: '{{ secret }}'}}]}]",
            "rules[0].do[0].params.x",
            "unknown name 'secret'",
        ),
        (
            "rules: [{id: a, when: 't', do: [{connector: webhook, action: e,"
            " params: {x: '{% if 1 %}{% endif %}'}}]}]",
            "rules[0].do[0].params.x",
            "statements",
        ),
    ],
)
def test_bad_rules_name_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(TemplateError) as info:
        load_rules(write(tmp_path, text))
    problems = {p.field: p.message for p in info.value.problems}
    assert field in problems, problems
    assert words in problems[field]


def test_no_rules_file_means_no_rules(tmp_path: Path) -> None:
    assert find_rules(tmp_path) == CampaignRules()


def test_a_bundle_with_bad_rules_is_not_registered(campaign: Campaign) -> None:
    from chalicelib import bootstrap
    from chalicelib.services import templates

    write(
        campaign.root,
        "rules: [{id: a, when: 'event.kind ==', do: [{connector: webhook, action: e}]}]",
    )
    with pytest.raises(TemplateError) as info:
        templates.register_folder(bootstrap.backends(), campaign.root)
    assert info.value.problems[0].field == "rules[0].when"
    assert bootstrap.backends().templates.get_template("tiny") is None
