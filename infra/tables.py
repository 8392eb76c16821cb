"""The DynamoDB tables: jobs (and pages, deliveries), the player's events, idempotency records."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra import checkov


class Tables(Construct):
    """Every table, on demand, with point-in-time recovery; the two that hold data are kept
    when the stack goes."""

    def __init__(self, scope: Construct, id: str, *, event_ttl_days: int | None = None) -> None:
        super().__init__(scope, id)
        self.event_ttl_days = event_ttl_days  # the functions write events' `expires_at` from it
        self.jobs = self._pk_sk_table("Jobs")
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # A restore of the jobs table to a point needs the idempotency records of then, or
            # a replayed render would run twice; PITR costs by size, and these records are few.
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,  # only short-lived idempotency records
        )
        checkov.skip(self.idempotency, "CKV_AWS_119", checkov.TABLE_KMS)
        # Events expire by TTL after the campaigns' retention (infra/retention.py): an event
        # without `expires_at` (no retention set) is kept.
        self.events = self._pk_sk_table("Events", ttl="expires_at")

    def _pk_sk_table(self, id: str, ttl: str | None = None) -> dynamodb.Table:
        """A table of the DynamoDB adapters' layout (adapters/dynamodb.py): string keys pk and
        sk, on demand, point-in-time recovery, kept when the stack goes."""
        string = dynamodb.AttributeType.STRING
        table = dynamodb.Table(
            self,
            id,
            partition_key=dynamodb.Attribute(name="pk", type=string),
            sort_key=dynamodb.Attribute(name="sk", type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        checkov.skip(table, "CKV_AWS_119", checkov.TABLE_KMS)
        return table
