"""A campaign's rules (rules.yaml beside its template): which behaviour becomes which CRM action.

    rules:
      - id: engaged
        when: "event.kind == 'progress' && event.progress >= `75`"
        do:
          - connector: hubspot
            action: set_property
            params: {properties: {video_engaged: "true"}}
      - id: clicked
        when: "event.kind == 'cta_click'"
        do:
          - {connector: salesforce, action: create_task,
             params: {subject: "Call {{ recipient_id }}: clicked in the video"}}

`when` is JMESPath over `{"event": …, "recipient": …, "campaign_id": …}` — the event as stored
and the recipient's aggregate (analytics.RecipientStats). Every string in `params` may use
`{{ expressions }}` over the same names, plus `recipient_id`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from chalicelib.errors import Problem, TemplateError
from chalicelib.template.expr import compile_condition, evaluate_condition, interpolate
from chalicelib.template.expr import template_variables as names_in
from chalicelib.template.library import pydantic_problems, read_document
from chalicelib.template.model import IDENT, Strict

RULES_NAMES = ("rules.yaml", "rules.yml", "rules.json")
CONTEXT_NAMES = {"event", "recipient", "recipient_id", "campaign_id", "experiments"}


class RuleAction(Strict):
    connector: Literal["webhook", "hubspot", "salesforce"]
    action: str = Field(pattern=r"^[a-z][a-z_.]{0,40}$")
    params: dict[str, Any] = Field(default_factory=dict)


class Rule(Strict):
    id: str = Field(pattern=IDENT)
    when: str = Field(min_length=1, description="JMESPath over {event, recipient, campaign_id}")
    do: list[RuleAction] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _compiles(cls, v: str) -> str:
        compile_condition(v)  # ValueError with JMESPath's reason
        return v


class CampaignRules(Strict):
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: list[Rule]) -> list[Rule]:
        ids = [r.id for r in v]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"rule ids must be unique: {', '.join(dupes)}")
        return v


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def check_rules(rules: CampaignRules) -> list[Problem]:
    """Problems of the params' expressions (unknown names, statements, bad syntax)."""
    problems = []
    for ri, rule in enumerate(rules.rules):
        for ai, action in enumerate(rule.do):
            prefix = f"rules[{ri}].do[{ai}].params"
            for path, text in _strings(action.params, prefix):
                try:
                    unknown = names_in(text) - CONTEXT_NAMES
                except ValueError as exc:
                    problems.append(Problem(path, str(exc)))
                    continue
                problems.extend(Problem(path, f"unknown name {n!r}") for n in sorted(unknown))
    return problems


def load_rules(path: Path) -> CampaignRules:
    """Read and check a rules file; TemplateError lists every problem with its path."""
    try:
        rules = CampaignRules.model_validate(read_document(path) or {})
    except ValidationError as exc:
        problems = pydantic_problems(exc)
        raise TemplateError(
            f"{len(problems)} problem(s) in {path.name}", problems=problems
        ) from exc
    if problems := check_rules(rules):
        raise TemplateError(f"{len(problems)} problem(s) in {path.name}", problems=problems)
    return rules


def find_rules(root: Path) -> CampaignRules:
    """The campaign folder's rules (none when it has no rules file)."""
    found = next((root / n for n in RULES_NAMES if (root / n).is_file()), None)
    return load_rules(found) if found else CampaignRules()


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return interpolate(value, context)
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    return value


def matching(rules: CampaignRules, context: dict[str, Any]) -> list[tuple[Rule, int, RuleAction]]:
    """The (rule, action index, action with params rendered) that `context` triggers, in order."""
    out = []
    for rule in rules.rules:
        if evaluate_condition(rule.when, context):
            for index, action in enumerate(rule.do):
                params = _render(action.params, context)
                out.append((rule, index, action.model_copy(update={"params": params})))
    return out
