"""Experiments (pure): deterministic, sticky assignment of a recipient to a variant, the template
a variant makes, and the checks `reel validate` runs on the `experiments:` section.

Assignment is a hash, not a draw: SHA-256 of (experiment id, recipient id) read as a number in
[0, 1) and placed on the variants' cumulative weights. The same recipient gets the same variant
on every run and every machine, with nothing stored to look up; it is stored all the same, in
the recipient's record (`ASSIGNED`), on their page and in their render plan, so the stream,
rules, the CRM and the analytics all see the variant the video showed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chalicelib.errors import Problem
from chalicelib.template.loaded import LoadedTemplate
from chalicelib.template.model import (
    Experiment,
    Interaction,
    PageSpec,
    Scene,
    SceneRef,
    Template,
    TextLayer,
    Variant,
)

# The record's field holding the assignment: not an identifier, so never a template variable.
ASSIGNED = "$experiments"
_INTERACTION: TypeAdapter[Any] = TypeAdapter(Interaction)


def bucket(experiment_id: str, recipient_id: str) -> float:
    """The recipient's place in [0, 1) for this experiment (the same everywhere, always)."""
    digest = hashlib.sha256(f"{experiment_id}\x1f{recipient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, recipient_id: str) -> str:
    """The variant id of `recipient_id` in `experiment`, in proportion to the weights."""
    total = sum(v.weight for v in experiment.variants)
    if total <= 0:
        return control(experiment).id
    point = bucket(experiment.id, recipient_id) * total
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.weight
        if point < cumulative and variant.weight > 0:
            return variant.id
    return next(v.id for v in reversed(experiment.variants) if v.weight > 0)


def assign_all(template: Template, recipient_id: str) -> dict[str, str]:
    """Every experiment's variant for the recipient: {experiment id: variant id}."""
    return {e.id: assign(e, recipient_id) for e in template.experiments}


def control(experiment: Experiment) -> Variant:
    for variant in experiment.variants:
        if variant.id == experiment.control:
            return variant
    return experiment.variants[0]


def assigned(record: Mapping[str, Any]) -> dict[str, str]:
    """The assignment a record carries (none: every experiment's control)."""
    value = record.get(ASSIGNED)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def chosen(template: Template, assignment: Mapping[str, str]) -> list[Variant]:
    """The variant of each experiment under `assignment` (the control where it says none)."""
    out = []
    for experiment in template.experiments:
        wanted = assignment.get(experiment.id)
        found = [v for v in experiment.variants if v.id == wanted]
        out.append(found[0] if found else control(experiment))
    return out


def _scene_texts(scene: Scene, texts: Mapping[str, str]) -> Scene:
    if not any(isinstance(layer, TextLayer) and layer.id in texts for layer in scene.layers):
        return scene
    layers = [
        layer.model_copy(update={"text": texts[layer.id]})
        if isinstance(layer, TextLayer) and layer.id is not None and layer.id in texts
        else layer
        for layer in scene.layers
    ]
    return scene.model_copy(update={"layers": layers})


def variant_template(lt: LoadedTemplate, assignment: Mapping[str, str]) -> LoadedTemplate:
    """The template as the assigned variants make it (unchanged without experiments)."""
    tpl = lt.template
    if not tpl.experiments:
        return lt
    variants = chosen(tpl, assignment)
    swaps = {k: v for variant in variants for k, v in variant.scenes.items()}
    texts = {k: v for variant in variants for k, v in variant.texts.items()}
    changes: dict[str, dict[str, Any]] = {}
    cta = tpl.page.cta
    for variant in variants:
        cta = variant.cta or cta
        for iid, fields in variant.interactions.items():
            changes.setdefault(iid, {}).update(fields)
    if not (swaps or texts or changes or cta != tpl.page.cta):
        return lt
    entries: list[Scene | SceneRef] = []
    for entry in tpl.scenes:
        scene_id = entry.use if isinstance(entry, SceneRef) else entry.id
        if scene_id in swaps:
            when = entry.when
            entries.append(SceneRef(use=swaps[scene_id], when=when))
        elif isinstance(entry, Scene):
            entries.append(_scene_texts(entry, texts))
        else:
            entries.append(entry)
    interactions = [
        _INTERACTION.validate_python({**item.model_dump(), **changes[item.id]})
        if item.id in changes
        else item
        for item in tpl.interactions
    ]
    page = PageSpec.model_validate({**tpl.page.model_dump(), "cta": cta})
    template = tpl.model_copy(
        update={"scenes": entries, "interactions": interactions, "page": page}
    )
    library = {k: _scene_texts(s, texts) for k, s in lt.library.items()}
    return replace(lt, template=template, library=library)


def experiment_problems(lt: LoadedTemplate) -> list[Problem]:
    """Weights that do not sum to a positive number, unknown controls, scenes, layers and
    interactions, and variants that make an invalid interaction."""
    tpl = lt.template
    problems: list[Problem] = []
    scene_ids = {(e.use if isinstance(e, SceneRef) else e.id) for e in tpl.scenes}
    text_ids = {
        layer.id
        for scene in [*lt.library.values(), *(e for e in tpl.scenes if isinstance(e, Scene))]
        for layer in scene.layers
        if isinstance(layer, TextLayer) and layer.id
    }
    interactions = {i.id: i for i in tpl.interactions}
    ids = [e.id for e in tpl.experiments]
    for index, experiment in enumerate(tpl.experiments):
        prefix = f"experiments[{index}]"
        if ids.count(experiment.id) > 1:
            problems.append(
                Problem(f"{prefix}.id", f"experiment ids must be unique: {experiment.id!r}")
            )
        total = sum(v.weight for v in experiment.variants)
        if not total > 0:
            problems.append(
                Problem(
                    f"{prefix}.variants",
                    f"the weights sum to {total:g}: they must sum to a positive number",
                )
            )
        names = [v.id for v in experiment.variants]
        if len(set(names)) != len(names):
            problems.append(Problem(f"{prefix}.variants", "variant ids must be unique"))
        if experiment.control is not None and experiment.control not in names:
            problems.append(
                Problem(f"{prefix}.control", f"no variant with id {experiment.control!r}")
            )
        for vi, variant in enumerate(experiment.variants):
            vp = f"{prefix}.variants[{vi}]"
            for old in variant.scenes:
                if old not in scene_ids:
                    problems.append(Problem(f"{vp}.scenes.{old}", f"no scene with id {old!r}"))
            for layer in variant.texts:
                if layer not in text_ids:
                    problems.append(
                        Problem(f"{vp}.texts.{layer}", f"no text layer with id {layer!r}")
                    )
            for iid, fields in variant.interactions.items():
                item = interactions.get(iid)
                if item is None:
                    problems.append(
                        Problem(f"{vp}.interactions.{iid}", f"no interaction with id {iid!r}")
                    )
                    continue
                try:
                    _INTERACTION.validate_python({**item.model_dump(), **fields})
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = ".".join(str(p) for p in first["loc"][1:])
                    problems.append(
                        Problem(f"{vp}.interactions.{iid}.{where}".rstrip("."), first["msg"])
                    )
    return problems


def variant_scene_refs(template: Template) -> list[tuple[str, str]]:
    """(field path, library scene id) of every scene a variant plays instead of another."""
    return [
        (f"experiments[{ei}].variants[{vi}].scenes.{old}", new)
        for ei, experiment in enumerate(template.experiments)
        for vi, variant in enumerate(experiment.variants)
        for old, new in variant.scenes.items()
    ]
