"""The DynamoDB tables: jobs (and pages, deliveries), the player's events, idempotency records."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct


class Tables(Construct):
    """Every table, on demand; the two that hold data have point-in-time recovery and are kept
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
            removal_policy=cdk.RemovalPolicy.DESTROY,  # only short-lived idempotency records
        )
        # Events expire by TTL after the campaigns' retention (infra/retention.py): an event
        # without `expires_at` (no retention set) is kept.
        self.events = self._pk_sk_table("Events", ttl="expires_at")

    def _pk_sk_table(self, id: str, ttl: str | None = None) -> dynamodb.Table:
        """A table of the DynamoDB adapters' layout (adapters/dynamodb.py): string keys pk and
        sk, on demand, point-in-time recovery, kept when the stack goes."""
        string = dynamodb.AttributeType.STRING
        return dynamodb.Table(
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
