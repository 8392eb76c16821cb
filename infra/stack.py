"""The Reel stack: media and CDN, tables, tracking, the batch pipeline and the API, wired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.api import INCOMING_PREFIX, Api
from infra.logical_ids import FlatStack
from infra.media import MediaCdn
from infra.pipeline import BatchPipeline
from infra.retention import Retention
from infra.tables import Tables
from infra.tracking import Tracking


class ReelStack(FlatStack):
    """Everything Reel needs on AWS; idle, it costs (almost) nothing.

    The five constructs do not show in logical ids: a resource keeps the id it had when it sat
    on the stack itself (infra/logical_ids.py), so a stack deployed before them updates in place.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        public_key_pem: str,
        api_layer: Path,
        max_concurrency: int,
        tolerated_failure_percentage: float,
        batch_size: int = 1,
        retention: Retention | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        retention = retention or Retention()
        media = MediaCdn(self, "Media", public_key_pem=public_key_pem, media_days=retention.media)
        tables = Tables(self, "Tables", event_ttl_days=retention.events)
        tracking = Tracking(self, "Tracking", media=media, tables=tables)
        pipeline = BatchPipeline(
            self,
            "Batch",
            media=media,
            tables=tables,
            relay=tracking.relay,
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            batch_size=batch_size,
        )
        api = Api(
            self,
            "Api",
            stage=stage,
            api_layer=api_layer,
            media=media,
            tables=tables,
            tracking=tracking,
            pipeline=pipeline,
        )
        media.send_created_objects(INCOMING_PREFIX, api.incoming)
        self.flatten(media, tables, tracking, pipeline, api)

        cdk.CfnOutput(self, "MediaBucket", value=media.bucket_name)
        cdk.CfnOutput(self, "CdnDomain", value=media.distribution.distribution_domain_name)
        cdk.CfnOutput(self, "CdnKeyId", value=media.public_key.public_key_id)
        cdk.CfnOutput(self, "BatchStateMachine", value=pipeline.machine.state_machine_arn)
        cdk.CfnOutput(self, "RenderFunction", value=pipeline.render.function_name)
        cdk.CfnOutput(
            self, "RenderDeadLetterQueueUrl", value=pipeline.stream_dead_letters.queue_url
        )
        cdk.CfnOutput(self, "IncomingDeadLetterQueueUrl", value=api.incoming_dead_letters.queue_url)
        cdk.CfnOutput(self, "EventsTable", value=tables.events.table_name)
        cdk.CfnOutput(self, "RelayQueueUrl", value=tracking.relay.queue_url)
        cdk.CfnOutput(self, "RelayDeadLetterQueueUrl", value=tracking.dead_letters.queue_url)
        cdk.CfnOutput(self, "RelayFunction", value=tracking.worker.function_name)
        cdk.CfnOutput(self, "TrackingSecretArn", value=tracking.secret.secret_arn)
