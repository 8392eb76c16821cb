"""The HTTP API and its S3 trigger: the Chalice app, its dependencies' layer, its one role."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.render.ffmpeg import ffmpeg_version
from infra import checkov, deps
from infra.functions import (
    API_CONCURRENCY,
    DELIVERY_STORE,
    ERASE_OBJECTS,
    EVENT_STORE,
    INCOMING_CONCURRENCY,
    LOG_RETENTION,
    S3_LIST,
    S3_READ,
    S3_WRITE,
    SECRET_REFERENCE,
    SEND,
    allow,
    context_secrets,
    environment,
    lambda_role,
)
from infra.media import MediaCdn
from infra.pipeline import BatchPipeline
from infra.tables import Tables
from infra.tracking import Tracking

#: The Chalice function S3 invokes for objects under INCOMING_PREFIX (@app.lambda_function).
INCOMING_FUNCTION = "Incoming"
INCOMING_PREFIX = "incoming/"
#: The API's secrets named in CDK context (see infra.functions.context_secrets): the CloudFront
#: key group's private key (signs media URLs) and the API keys of the write routes.
API_SECRET_CONTEXT = {
    "cdn_private_key_secret": "REEL_CDN_PRIVATE_KEY",
    "api_keys_secret": "REEL_API_KEYS",
}
#: The API stage's access log: one JSON line a request. No source IP and no caller: recipients
#: open landing pages through this API, and their addresses are personal data it does not need.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latency": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
    },
    separators=(",", ":"),
)
#: Reserved concurrency of the Chalice functions (infra/functions.py says why).
CHALICE_CONCURRENCY = {"APIHandler": API_CONCURRENCY, INCOMING_FUNCTION: INCOMING_CONCURRENCY}
#: Why each Chalice function needs no dead-letter queue of its own.
CHALICE_DLQ_REASONS = {
    "APIHandler": "invoked synchronously by API Gateway: a failure is the request's HTTP answer",
    INCOMING_FUNCTION: (
        "S3 invokes it asynchronously: an event that fails its retries goes to the on-failure "
        "destination IncomingDeadLetters (EventInvokeConfig), which keeps the event and the "
        "error, unlike a DLQ, and `reel failures` lists"
    ),
}


class ChaliceApi(Chalice):
    """`chalice.cdk.Chalice` packaged for a named stage (the construct uses its scope's name)."""

    def __init__(self, scope: Construct, id: str, *, stage: str, **kwargs: Any) -> None:
        self._reel_stage = stage
        # Packaging imports app.py with the stage's environment variables set in os.environ,
        # and leaves them there: put the process's environment back afterwards.
        saved = dict(os.environ)
        # chalice package wants a region, although the template it writes uses AWS::Region.
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        # The construct writes chalice.out/ under the current directory: use a scratch one
        # (CDK copies what it needs into the cloud assembly while the construct is built).
        try:
            with (
                tempfile.TemporaryDirectory(prefix="reel-chalice-") as scratch,
                contextlib.chdir(scratch),
            ):
                super().__init__(scope, id, **kwargs)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _package_app(self) -> None:
        self.stage_name = self._reel_stage
        super()._package_app()


class Api(Construct):
    """The Chalice functions (APIHandler behind API Gateway, and Incoming) on one role of their
    own; their dependencies ride in a layer built offline (infra/deps.py)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        api_layer: Path,
        media: MediaCdn,
        tables: Tables,
        tracking: Tracking,
        pipeline: BatchPipeline,
    ) -> None:
        super().__init__(scope, id)
        role = lambda_role(self, "ApiRole", "Reel HTTP API and its S3 trigger (Chalice functions)")
        log_group = logs.LogGroup(
            self, "ApiLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        checkov.skip(log_group, "CKV_AWS_158", checkov.LOGS_KMS)
        log_group.grant_write(role)
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        checkov.skip(access_logs, "CKV_AWS_158", checkov.LOGS_KMS)
        # S3 invokes Incoming asynchronously: an upload whose handler fails its retries lands
        # here, where `reel failures` lists it (and retries it), instead of being dropped.
        self.incoming_dead_letters = sqs.Queue(
            self,
            "IncomingDeadLetters",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        checkov.skip(self.incoming_dead_letters, "CKV_AWS_27", checkov.SQS_MANAGED_SSE)
        allow(role, "IncomingFailures", SEND, [self.incoming_dead_letters.queue_arn])
        # Uploads, bundles, thumbnails; reads of media, sources and segments. No deletes.
        allow(role, "Media", [*S3_READ, *S3_WRITE], [media.bucket.arn_for_objects("*")])
        allow(role, "MediaList", S3_LIST, [media.bucket.bucket_arn])
        allow(role, "Jobs", DELIVERY_STORE, [tables.jobs.table_arn])  # and the deliveries' routes
        pipeline.machine.grant_start_execution(role)
        pipeline.render.grant_invoke(role)
        # DynamoEventStore: conditional puts, the campaign's Query
        allow(role, "EventStore", EVENT_STORE, [tables.events.table_arn])
        allow(role, "RelayQueue", SEND, [tracking.relay.queue_arn])
        # Erasure (DELETE /recipients/{id}, services/privacy.py): a person's media and every
        # version of them, their events, and the Scan that finds their pages and jobs.
        allow(role, "EraseMedia", ERASE_OBJECTS, [media.bucket.arn_for_objects("*")])
        allow(role, "EraseMediaVersions", ["s3:ListBucketVersions"], [media.bucket.bucket_arn])
        allow(role, "EraseRecords", ["dynamodb:Scan"], [tables.jobs.table_arn])
        allow(role, "EraseEvents", ["dynamodb:DeleteItem"], [tables.events.table_arn])
        # POST /templates checks a voice line's voice against the engine's list ("*" only).
        allow(role, "PollyVoices", ["polly:DescribeVoices"], ["*"])
        # X-Ray takes no resource-level permissions
        allow(role, "XRay", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])
        secret_env, secrets = context_secrets(self, API_SECRET_CONTEXT)
        env = {
            **environment(media, tables),
            "REEL_STATE_MACHINE_ARN": pipeline.machine.state_machine_arn,
            "REEL_RENDER_FUNCTION": pipeline.render.function_name,
            "REEL_CDN_DOMAIN": media.distribution.distribution_domain_name,
            "REEL_CDN_KEY_ID": media.public_key.public_key_id,
            "REEL_EVENTS_TABLE": tables.events.table_name,
            "REEL_RELAY_QUEUE_URL": tracking.relay.queue_url,
            # `reel failures` / GET /failures: the on-failure queues of asynchronous invocations
            "REEL_RENDER_DEAD_LETTER_QUEUE_URL": pipeline.stream_dead_letters.queue_url,
            "REEL_INCOMING_DEAD_LETTER_QUEUE_URL": self.incoming_dead_letters.queue_url,
            # A reference, resolved by the settings at cold start: the value never sits in the
            # template or the functions' configuration (see infra/README.md).
            "REEL_TRACKING_SECRET": SECRET_REFERENCE + tracking.secret.secret_arn,
            # The API plans renders and streams (cache keys name the ffmpeg) without an ffmpeg
            # of its own: the pinned build's version, read here from the same wheel.
            "REEL_FFMPEG_VERSION": ffmpeg_version(),
            # The key group's private key (PEM), kept by the operator in Secrets Manager under
            # the name given as context `cdn_private_key_secret`: with it the API signs
            # CloudFront URLs; without it, media URLs are presigned S3 URLs (see
            # infra/README.md). The API keys likewise (`api_keys_secret`): without them every
            # write route answers 401.
            **secret_env,
        }
        allow(
            role,
            "Secrets",
            ["secretsmanager:GetSecretValue"],
            [tracking.secret.secret_arn, *secrets],
        )
        # `chalice package` then zips only app.py and chalicelib: no pip, no index, a second.
        layer = lambda_.LayerVersion(
            self,
            "ApiDependencies",
            code=lambda_.Code.from_asset(str(api_layer)),
            compatible_runtimes=[
                lambda_.Runtime(deps.LAMBDA_RUNTIME, lambda_.RuntimeFamily.PYTHON)
            ],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Reel API: pyproject.toml [project].dependencies",
        )
        chalice = ChaliceApi(
            self,
            "Api",
            stage=stage,
            source_dir=str(deps.ROOT),
            stage_config={
                "manage_iam_role": False,
                "iam_role_arn": role.role_arn,
                "autogen_policy": False,
                "xray": True,
                "environment_variables": env,
            },
        )
        for child in chalice.sam_template.node.children:
            if (
                isinstance(child, cdk.CfnResource)
                and child.cfn_resource_type == "AWS::Serverless::Function"
            ):
                child.add_property_override("Runtime", deps.LAMBDA_RUNTIME)
                child.add_property_override("Layers", [layer.layer_version_arn])
                child.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
                name = child.node.id
                child.add_property_override(
                    "ReservedConcurrentExecutions", CHALICE_CONCURRENCY[name]
                )
                checkov.skip(child, "CKV_AWS_116", CHALICE_DLQ_REASONS[name])
                checkov.skip(child, "CKV_AWS_117", checkov.NO_VPC)
                checkov.skip(child, "CKV_AWS_173", checkov.ENV_KMS)
                if name == INCOMING_FUNCTION:
                    child.add_property_override(
                        "EventInvokeConfig",
                        {
                            "MaximumRetryAttempts": 2,
                            "MaximumEventAgeInSeconds": 3600,
                            "DestinationConfig": {
                                "OnFailure": {
                                    "Type": "SQS",
                                    "Destination": self.incoming_dead_letters.queue_arn,
                                }
                            },
                        },
                    )
            if (
                isinstance(child, cdk.CfnResource)
                and child.cfn_resource_type == "AWS::Serverless::Api"
            ):
                child.add_property_override("TracingEnabled", True)
                child.add_property_override(
                    "AccessLogSetting",
                    {"DestinationArn": access_logs.log_group_arn, "Format": ACCESS_LOG_FORMAT},
                )
                checkov.skip(
                    child,
                    "CKV_AWS_120",
                    "answers are per API key and per request (renders, uploads, signed URLs): "
                    "nothing to cache, and a cache cluster is billed by the hour",
                )
        #: The function S3 invokes for uploads under INCOMING_PREFIX (MediaCdn wires it).
        self.incoming = chalice.get_function(INCOMING_FUNCTION)
        # GET /failures reads the dead letters (a receive that hides nothing), a retry invokes
        # the failed function again and deletes its dead letter.
        allow(
            role,
            "Failures",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
            [self.incoming_dead_letters.queue_arn, pipeline.stream_dead_letters.queue_arn],
        )
        allow(role, "RetryIncoming", ["lambda:InvokeFunction"], [self.incoming.function_arn])
