"""Logical ids that leave a layer of constructs out (FlatStack), by CDK's own makeUniqueId."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import aws_cdk as cdk
from constructs import IConstruct

#: aws-cdk-lib's makeUniqueId (core/lib/private/uniqueid.ts), which CDK does not export: a path
#: component "Default" is left out altogether, "Resource" only from the readable part.
HIDDEN_ID = "Default"
HIDDEN_FROM_HUMAN_ID = "Resource"
HASH_LEN = 8
MAX_HUMAN_LEN = 240
MAX_ID_LEN = 255
_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def make_unique_id(components: Sequence[str]) -> str:
    """CDK's unique id of a construct path: the components run together (alphanumerics only, a
    component the previous one ends with skipped) and an md5 of the whole path; a path of one
    component is that component alone."""
    components = [c for c in components if c != HIDDEN_ID]
    if not components:
        raise ValueError("components: no id can be made of an empty path")
    if len(components) == 1:
        candidate = _NON_ALPHANUMERIC.sub("", components[0])
        if len(candidate) <= MAX_ID_LEN:
            return candidate
    digest = hashlib.md5("/".join(components).encode()).hexdigest()[:HASH_LEN].upper()
    human: list[str] = []
    for component in components:
        if not human or not human[-1].endswith(component):
            human.append(component)
    readable = "".join(_NON_ALPHANUMERIC.sub("", c) for c in human if c != HIDDEN_FROM_HUMAN_ID)
    return readable[:MAX_HUMAN_LEN] + digest


class FlatStack(cdk.Stack):
    """A stack whose logical ids ignore a layer of constructs right under it (`flatten`): an
    element inside one gets the id it would have had if that construct's children sat on the
    stack itself.

    A renamed logical id is a new resource to CloudFormation, which replaces the old one on
    update (the bucket, tables, secret, queues, state machine and log groups: fixed names make
    that fail, kept ones are orphaned), so grouping resources into constructs must not rename
    them. The constructs' children therefore keep the ids they had on the stack, and so do the
    construct ids some constructs put in their children's ids (a Lambda event source is named
    after its queue: `SqsEventSource:<Names.uniqueId(queue)>`). Names that CDK derives from
    the construct tree in a resource's properties (CloudFront's) are not covered: such
    resources stay on the stack.
    """

    _layers: tuple[IConstruct, ...] = ()
    #: a construct's unique id under a layer → the one it had without it (found lazily)
    _unique_ids: dict[str, str]

    def flatten(self, *layers: IConstruct) -> None:
        """Leave `layers` (children of this stack) out of the logical ids of their elements."""
        for layer in layers:
            if layer.node.scope is not self:
                raise ValueError(f"layers: {layer.node.path} is not a child of {self.node.path}")
        self._layers = layers
        self._unique_ids = {}

    def _allocate_logical_id(self, cfn_element: cdk.CfnElement) -> str:
        # CDK calls this when it resolves logical ids (at synthesis), once the tree is built.
        path = self._path_below_stack(cfn_element)
        if path is None:
            return super()._allocate_logical_id(cfn_element)
        # Two layers with children of one id make one logical id twice: CDK refuses that
        # template ("section 'Resources' already contains …").
        return make_unique_id([self._unlayered(c) for c in path])

    def _path_below_stack(self, construct: IConstruct) -> list[str] | None:
        """The ids from the stack's child down to `construct`, its layer left out; None if
        `construct` is not inside a layer."""
        scopes = construct.node.scopes
        below = scopes[scopes.index(self) + 1 :]
        if len(below) < 2 or not any(below[0] is layer for layer in self._layers):
            return None
        return [s.node.id for s in below[1:]]

    def _unlayered(self, component: str) -> str:
        """`component`, with the unique id of a construct inside a layer that it ends with (as
        in `SqsEventSource:<unique id>`) replaced by that construct's unique id without it."""
        kind, colon, unique = component.rpartition(":")
        if not colon:
            return component
        if unique not in self._unique_ids:
            self._find_unique_ids()
        return f"{kind}:{self._unique_ids.get(unique, unique)}"

    def _find_unique_ids(self) -> None:
        above = [s.node.id for s in self.node.scopes[1:]]  # Names.uniqueId: below the app
        for construct in self.node.find_all():
            path = self._path_below_stack(construct)
            if path is not None:
                self._unique_ids[cdk.Names.unique_id(construct)] = make_unique_id(above + path)
