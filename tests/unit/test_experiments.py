"""Experiments: sticky, deterministic assignment (pinned values: the same on every machine), the
split of 10,000 recipients, the checks `reel validate` runs, and what a variant changes."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.pipeline.steps import make_job
from chalicelib.template.experiments import ASSIGNED, assign, bucket
from chalicelib.template.library import load_template, validate_template_file
from chalicelib.template.model import Experiment
from tests.conftest import BASE_TEMPLATE, Campaign

EXPERIMENTS = """\
experiments:
  - id: greeting_test
    variants:
      - {id: control, weight: 1}
      - {id: warm, weight: 1, texts: {hello: "Welcome back, {{ first_name }}!"},
         cta: {label: "Start now", url: /health}}
      - {id: short, weight: 2, scenes: {greeting: pro_offer}}
"""


def experimental(extra: str = EXPERIMENTS) -> str:
    base = BASE_TEMPLATE.replace("- {type: text, text:", "- {type: text, id: hello, text:")
    return base + extra


def experiment(*weights: float) -> Experiment:
    return Experiment.model_validate(
        {"id": "exp", "variants": [{"id": f"v{i}", "weight": w} for i, w in enumerate(weights)]}
    )


def test_assignment_is_a_pinned_hash() -> None:
    # SHA-256 of "exp\x1fada@example.com": the same value on every run and machine
    assert bucket("exp", "ada@example.com") == pytest.approx(0.742261, abs=1e-6)
    two = experiment(1, 1)
    assert [assign(two, f"r{i}") for i in range(8)] == [
        "v1",
        "v1",
        "v0",
        "v1",
        "v1",
        "v0",
        "v0",
        "v1",
    ]
    # another experiment shuffles recipients independently
    other = Experiment.model_validate({**two.model_dump(), "id": "exp2"})
    assert [assign(other, f"r{i}") for i in range(8)] != [assign(two, f"r{i}") for i in range(8)]


def test_ten_thousand_recipients_split_by_the_weights() -> None:
    exp = experiment(1, 1, 2)
    counts = Counter(assign(exp, f"recipient-{i}@example.com") for i in range(10_000))
    for variant, share in (("v0", 0.25), ("v1", 0.25), ("v2", 0.5)):
        assert abs(counts[variant] / 10_000 - share) < 0.02, counts
    # a zero weight gets nobody
    assert "v1" not in {assign(experiment(1, 0, 1), f"r{i}") for i in range(1000)}


def test_stable_across_runs(campaign: Campaign) -> None:
    campaign.write_template(experimental())
    lt = load_template(campaign.template)
    first = [make_job(lt, {"first_name": "A"}, f"r{i}", 0).plan.record[ASSIGNED] for i in range(20)]
    again = [make_job(lt, {"first_name": "A"}, f"r{i}", 0).plan.record[ASSIGNED] for i in range(20)]
    assert first == again
    assert {a["greeting_test"] for a in first} == {"control", "warm", "short"}


def test_a_variant_changes_what_it_names(campaign: Campaign) -> None:
    campaign.write_template(experimental())
    lt = load_template(campaign.template)
    by_variant = {}
    for i in range(40):
        job = make_job(lt, {"first_name": "Ada"}, f"r{i}", 0)
        by_variant.setdefault(job.plan.record[ASSIGNED]["greeting_test"], job.plan)
    control, warm, short = by_variant["control"], by_variant["warm"], by_variant["short"]
    assert [s.id for s in control.scenes] == ["intro", "greeting", "outro"]
    assert control.scenes[1].layers[0].layer.text == "Hi Ada!"  # type: ignore[union-attr]
    assert warm.scenes[1].layers[0].layer.text == "Welcome back, Ada!"  # type: ignore[union-attr]
    assert [s.id for s in short.scenes] == ["intro", "pro_offer", "outro"]
    # the data cannot pick its variant: the hash does
    actual = assign(lt.template.experiments[0], "r0")
    forced = "warm" if actual != "warm" else "control"
    job = make_job(lt, {"first_name": "Ada", ASSIGNED: {"greeting_test": forced}}, "r0", 0)
    assert job.plan.record[ASSIGNED] == {"greeting_test": actual}


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("weight: 1}\n", "weight: 0}\n", None, None),  # still positive (0 + 1 + 2)
        ("{id: control, weight: 1}", "{id: control, weight: 0}", None, None),
        ("weight: 2,", "weight: 0,", None, None),
        (
            "greeting_test\n    variants",
            "greeting_test\n    control: nobody\n    variants",
            "experiments[0].control",
            "no variant with id 'nobody'",
        ),
        (
            "texts: {hello:",
            "texts: {bye:",
            "experiments[0].variants[1].texts.bye",
            "no text layer with id 'bye'",
        ),
        (
            "scenes: {greeting:",
            "scenes: {farewell:",
            "experiments[0].variants[2].scenes.farewell",
            "no scene with id 'farewell'",
        ),
        (
            "scenes: {greeting: pro_offer}",
            "scenes: {greeting: missing}",
            "experiments[0].variants[2].scenes.greeting",
            "scene 'missing' not found in the library",
        ),
    ],
)
def test_experiment_problems(
    campaign: Campaign, old: str, new: str, field: str | None, reason: str | None
) -> None:
    assert old in EXPERIMENTS
    campaign.write_template(experimental(EXPERIMENTS.replace(old, new, 1)))
    found = {p.field: p.message for p in validate_template_file(campaign.template)}
    if field is None:
        assert found == {}
    else:
        assert reason in found[field], found


def test_weights_must_sum_to_a_positive_number(campaign: Campaign) -> None:
    text = EXPERIMENTS.replace("weight: 1", "weight: 0").replace("weight: 2", "weight: 0")
    campaign.write_template(experimental(text))
    found = {p.field: p.message for p in validate_template_file(campaign.template)}
    assert found == {
        "experiments[0].variants": "the weights sum to 0: they must sum to a positive number"
    }
