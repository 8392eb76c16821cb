"""Checkov's skips, written by the construct that makes the resource, each with its reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

#: The metadata key checkov reads a CloudFormation resource's skips from.
METADATA_KEY = "checkov"


def _resource(target: IConstruct) -> cdk.CfnResource:
    """The CloudFormation resource of `target` (an L2 construct's default child, or itself)."""
    if isinstance(target, cdk.CfnResource):
        return target
    child = target.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"target: {target.node.path} has no CloudFormation resource")
    return child


def skip(target: IConstruct, check_id: str, comment: str) -> None:
    """Tell checkov not to fail `target` on `check_id`, because of `comment` (required: a skip
    without its reason is what the scan exists to catch)."""
    if not comment.strip():
        raise ValueError(f"comment: skipping {check_id} needs a reason")
    resource = _resource(target)
    metadata = resource.get_metadata(METADATA_KEY) or {}
    skips = [s for s in metadata.get("skip", []) if s["id"] != check_id]
    skips.append({"id": check_id, "comment": comment})
    resource.add_metadata(METADATA_KEY, {**metadata, "skip": skips})


# The reasons shared by several resources.
LOGS_KMS = (
    "log groups are encrypted by CloudWatch Logs' own keys; a customer key would cost a KMS key "
    "and a key policy for logs.amazonaws.com, and no one outside the account reads these logs"
)
NO_VPC = (
    "the function reaches only AWS APIs and the CRM over HTTPS: a VPC would add NAT gateways "
    "(or an endpoint per service) and cold-start latency for no network it needs to be inside"
)
ENV_KMS = (
    "the environment holds names, ARNs and `secretsmanager:` references, never a secret value "
    "(chalicelib/settings.py resolves those at cold start); Lambda encrypts it at rest anyway"
)
TABLE_KMS = (
    "encrypted at rest by DynamoDB's AWS-owned key; a customer key would add per-request KMS "
    "cost and gives nothing here: no other account or key policy needs to reach the data"
)
SQS_MANAGED_SSE = (
    "encrypted with SQS-managed SSE (SqsManagedSseEnabled: true); checkov's check only "
    "recognises a KMS key, which S3 and Lambda destinations would also need grants for"
)
