"""Logical ids: the stack keeps those of stacks already deployed; how FlatStack computes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.logical_ids import FlatStack, make_unique_id
from tests.infra import synth

#: Every resource's logical id and type, as deployed stacks have them (synthesized at 826f6a6,
#: before the stack was split into constructs). CloudFormation knows a resource by its logical
#: id: a renamed one is deleted and created anew on update, which fails on the fixed names (the
#: bucket, the state machine, its log group) or leaves the kept tables, secret and data behind.
#: So this file changes only deliberately: a new resource is added to it, an existing id never
#: changes (infra/logical_ids.py keeps the ids when resources move between constructs).
EXPECTED = Path(__file__).with_name("logical_ids.json")


def test_the_stack_keeps_the_logical_ids_of_deployed_stacks() -> None:
    resources = synth.template_json()["Resources"]
    found = {rid: res["Type"] for rid, res in resources.items()}
    assert found == json.loads(EXPECTED.read_text())


@pytest.mark.parametrize(
    "path",
    [
        ["Media"],  # one component: itself
        ["Tracking-Secret"],  # … alphanumerics only
        ["Media", "Resource"],  # "Resource" is hashed but not shown
        ["RenderRole", "DefaultPolicy", "Resource"],
        ["Api", "Default", "Logs"],  # "Default" is left out altogether
        ["RelayWorker", "Worker", "Resource"],  # a component the previous one ends with
        ["RelayWorker", "SqsEventSource:reeldevRelayC00DFEF0", "Resource"],
        ["x" * 150, "y" * 150],  # the readable part is cut at 240 characters
        ["z" * 300],  # one component too long for an id
    ],
)
def test_make_unique_id_is_cdks(path: list[str]) -> None:
    # GIVEN a construct at `path` (below an app, which Names.uniqueId leaves out)
    construct: Construct = cdk.App()
    for component in path:
        construct = Construct(construct, component)
    # THEN our port of makeUniqueId agrees with CDK's own
    assert make_unique_id(path) == cdk.Names.unique_id(construct)


def _relay(scope: Construct) -> None:
    """A queue and a function consuming it (its event source is named after the queue)."""
    queue = sqs.Queue(scope, "Relay")
    worker = lambda_.Function(
        scope,
        "RelayWorker",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    worker.add_event_source(event_sources.SqsEventSource(queue))


def _template(stack: cdk.Stack) -> dict[str, Any]:
    return dict(cdk.assertions.Template.from_stack(stack).to_json())


def test_a_flattened_layer_leaves_the_logical_ids_as_on_the_stack() -> None:
    # GIVEN the same resources on a stack, and in a construct of a stack that flattens it
    flat = cdk.Stack(cdk.App(), "reel-dev")
    _relay(flat)
    layered = FlatStack(cdk.App(), "reel-dev")
    _relay(Construct(layered, "Tracking"))
    layered.flatten(layered.node.find_child("Tracking"))
    # THEN the templates are the same, the event source's id (the queue's unique id) included
    expected = _template(flat)
    assert any(":" not in rid and "SqsEventSource" in rid for rid in expected["Resources"])
    assert _template(layered) == expected


def test_without_flatten_the_construct_shows_in_logical_ids() -> None:
    # (what the test above would see if FlatStack did nothing)
    stack = FlatStack(cdk.App(), "reel-dev")
    _relay(Construct(stack, "Tracking"))
    assert all(rid.startswith("Tracking") for rid in _template(stack)["Resources"])


def test_two_layers_with_children_of_one_id_are_refused() -> None:
    # GIVEN two flattened constructs that both hold a queue "Relay"
    stack = FlatStack(cdk.App(), "reel-dev")
    first, second = Construct(stack, "Tracking"), Construct(stack, "Batch")
    sqs.Queue(first, "Relay")
    sqs.Queue(second, "Relay")
    stack.flatten(first, second)
    # THEN synthesis fails (CDK's check) rather than writing one resource over the other
    with pytest.raises(RuntimeError, match="already contains 'Relay"):
        _template(stack)


def test_only_children_of_the_stack_can_be_flattened() -> None:
    stack = FlatStack(cdk.App(), "reel-dev")
    nested = Construct(Construct(stack, "Outer"), "Inner")
    with pytest.raises(ValueError, match="layers: reel-dev/Outer/Inner is not a child"):
        stack.flatten(nested)
