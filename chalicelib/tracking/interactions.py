"""The interaction events of a page checked against the template that declares them (pure): an
unknown interaction, an option outside a choice's, an answer to an undeclared field or outside a
field's options is refused with the field it names, before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chalicelib.errors import DataError
from chalicelib.template.interactive import AnyInteraction
from chalicelib.template.model import (
    ButtonInteraction,
    ChoiceInteraction,
    FormInteraction,
    HotspotInteraction,
    Template,
)
from chalicelib.tracking.events import INTERACTIVE_KINDS, ClientEvent, EventKind

# Deliberately loose (what a browser's type=email accepts): the CRM is the judge of the rest.
EMAIL = re.compile(r"^[^\s@]{1,64}@[^\s@]{1,255}$")


def _form_answers(form: FormInteraction, event: ClientEvent, path: str) -> None:
    declared = {f.name: f for f in form.fields}
    answers = event.answers or {}
    for name in answers:
        if name not in declared:
            raise DataError(
                f"{name!r} is not a field of form {form.id!r} (its fields: {', '.join(declared)})",
                field=f"{path}.answers.{name}",
            )
    for name, f in declared.items():
        where = f"{path}.answers.{name}"
        answer = answers.get(name)
        if answer is None or answer == "" or answer == []:
            if f.required:
                raise DataError(f"{name!r} is required", field=where)
            continue
        if f.type == "multiple":
            if not isinstance(answer, list):
                raise DataError("a multiple-choice answer is a list of options", field=where)
            outside = [a for a in answer if a not in (f.options or [])]
            if outside:
                raise DataError(
                    f"{outside[0]!r} is not one of the options {f.options}", field=where
                )
            continue
        if not isinstance(answer, str):
            raise DataError("this answer is one text, not a list", field=where)
        if f.type == "single" and answer not in (f.options or []):
            raise DataError(f"{answer[:80]!r} is not one of the options {f.options}", field=where)
        if f.type == "email" and not EMAIL.match(answer):
            raise DataError("not an email address", field=where)
        if f.type in ("text", "email") and len(answer) > f.max_length:
            raise DataError(f"longer than {f.max_length} characters", field=where)


def check_events(template: Template, events: Sequence[ClientEvent]) -> None:
    """DataError naming `events[i]…` for the first interaction event the template refuses."""
    declared: dict[str, AnyInteraction] = {i.id: i for i in template.interactions}
    for index, event in enumerate(events):
        if event.kind not in INTERACTIVE_KINDS:
            continue
        path = f"events[{index}]"
        item = declared.get(event.interaction or "")
        if item is None:
            raise DataError(
                f"no interaction {event.interaction!r} in this campaign",
                field=f"{path}.interaction",
            )
        if event.kind is EventKind.interaction_click and not isinstance(
            item, ButtonInteraction | HotspotInteraction
        ):
            raise DataError(
                f"{item.id!r} is a {item.type}, not a button or hotspot",
                field=f"{path}.interaction",
            )
        if event.kind is EventKind.choice:
            if not isinstance(item, ChoiceInteraction):
                raise DataError(
                    f"{item.id!r} is a {item.type}, not a choice", field=f"{path}.interaction"
                )
            values = [o.value for o in item.options]
            if event.option not in values:
                raise DataError(
                    f"{(event.option or '')[:80]!r} is not an option of {item.id!r} {values}",
                    field=f"{path}.option",
                )
        if event.kind is EventKind.form_submit:
            if not isinstance(item, FormInteraction):
                raise DataError(
                    f"{item.id!r} is a {item.type}, not a form", field=f"{path}.interaction"
                )
            _form_answers(item, event, path)


def record_updates(template: Template, events: Sequence[ClientEvent]) -> dict[str, str]:
    """What the events set on the recipient's record, in the order they happened: a choice sets
    its variable to the chosen value; a click on a button or hotspot whose action is `set` sets
    those variables. (Checked events only: `check_events` first.)"""
    declared: dict[str, AnyInteraction] = {i.id: i for i in template.interactions}
    updates: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.ts):
        item = declared.get(event.interaction or "")
        if event.kind is EventKind.choice and isinstance(item, ChoiceInteraction):
            updates[item.variable] = event.option or ""
        elif event.kind is EventKind.interaction_click and isinstance(
            item, ButtonInteraction | HotspotInteraction
        ):
            updates.update(item.action.set or {})
    return updates
