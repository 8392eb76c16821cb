"""Experiments as use cases: promote a winning variant to the campaign's default, in a new
template version (the experiment leaves the template: its test is over)."""

from __future__ import annotations

import json
from dataclasses import replace

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError
from chalicelib.pipeline.jobs import TemplateRecord
from chalicelib.services import templates
from chalicelib.template.experiments import variant_template


def promote(b: Backends, campaign_id: str, experiment_id: str, variant_id: str) -> TemplateRecord:
    """A new version of the campaign's template where `variant_id` is what everyone gets: its
    scenes, texts, CTA and interactions written in, and `experiment_id` gone. Renders and
    streams use it from now on (the latest version); records keep their earlier assignment
    until they are stored again. NotFoundError names the unknown experiment or variant."""
    record = templates.get_template(b, campaign_id)
    lt = templates.materialize(b, record)
    tpl = lt.template
    found = [e for e in tpl.experiments if e.id == experiment_id]
    if not found:
        known = ", ".join(e.id for e in tpl.experiments) or "none"
        raise NotFoundError(
            f"no experiment {experiment_id!r} in {campaign_id!r} (its experiments: {known})",
            field="experiment",
        )
    experiment = found[0]
    if variant_id not in {v.id for v in experiment.variants}:
        raise NotFoundError(
            f"no variant {variant_id!r} in experiment {experiment_id!r} (its variants: "
            f"{', '.join(v.id for v in experiment.variants)})",
            field="variant",
        )
    # Only this experiment's variant is written in; the others stay experiments.
    alone = replace(lt, template=tpl.model_copy(update={"experiments": [experiment]}))
    promoted = variant_template(alone, {experiment_id: variant_id})
    others = [e for e in tpl.experiments if e.id != experiment_id]
    new = promoted.template.model_copy(update={"experiments": others})
    # JSON is YAML too: each file keeps its name (the loader finds it where it was).
    files = {
        templates.template_file(lt.root).relative_to(lt.root).as_posix(): new.model_dump_json(
            indent=2
        ).encode()
    }
    for scene_id, scene in promoted.library.items():
        if scene != lt.library.get(scene_id) and scene_id in lt.library_files:
            path = lt.library_files[scene_id].relative_to(lt.root).as_posix()
            files[path] = json.dumps(scene.model_dump(mode="json"), indent=2).encode()
    return templates.register_template(b, bundle=templates.pack(lt.root, replace=files))
