"""The Reel stack: Chalice API, state machine, render images, S3, CloudFront, DynamoDB, SQS."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.render.ffmpeg import ffmpeg_version
from infra import deps

ROOT = deps.ROOT
DOCKERFILE = "layers/ffmpeg/Dockerfile"
#: The render image's build context is the repository root, but only what the Dockerfile COPYs
#: (and the Dockerfile) is staged: an allow-list in .dockerignore syntax keeps .venv, .git,
#: out/, tests/, cdk.out, the layer zip and the wheelhouse out of the asset by construction.
IMAGE_CONTEXT = [
    "*",
    "!pyproject.toml",
    "!README.md",
    "!app.py",
    "!chalicelib",
    f"!{DOCKERFILE}",
    "**/__pycache__",
    "**/*.pyc",
]
#: The Lambda functions of the image: one asset, one CMD each.
RENDER_HANDLER = "chalicelib.handlers.render.handler"
PLAN_HANDLER = "chalicelib.handlers.batch.plan"
FINALIZE_HANDLER = "chalicelib.handlers.batch.finalize"
FAILURE_HANDLER = "chalicelib.handlers.batch.record_failure"
RELAY_HANDLER = "chalicelib.handlers.relay.handler"
#: The Chalice function S3 invokes for objects under INCOMING_PREFIX (@app.lambda_function).
INCOMING_FUNCTION = "Incoming"
INCOMING_PREFIX = "incoming/"
LONG_TIMEOUT = 900  # render and plan (plan renders the shared static segments)
SHORT_TIMEOUT = 60  # finalize and record_failure: bookkeeping
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
#: A relay message seen this many times without being deleted goes to the dead-letter queue.
RELAY_MAX_RECEIVES = 5
#: Records per invocation of the relay function (SQS event source).
RELAY_BATCH_SIZE = 10
#: The relay function's connector settings, from CDK context (unset: the setting's default, so a
#: connector without its context stays off). Plain values: context name → environment variable.
RELAY_CONTEXT = {
    "webhook_url": "REEL_WEBHOOK_URL",
    "hubspot_base_url": "REEL_HUBSPOT_BASE_URL",
    "salesforce_instance_url": "REEL_SALESFORCE_INSTANCE_URL",
}
#: Secrets: the context names a Secrets Manager secret. The function gets a reference to it
#: (`secretsmanager:<name>`), which its settings resolve at cold start (chalicelib/settings.py),
#: and its role may read that secret only: no secret value in the template or in the functions'
#: configuration.
RELAY_SECRET_CONTEXT = {
    "webhook_secrets_secret": "REEL_WEBHOOK_SECRETS",
    "hubspot_token_secret": "REEL_HUBSPOT_TOKEN",
    "salesforce_token_secret": "REEL_SALESFORCE_TOKEN",
}
#: The API's secrets named the same way: the CloudFront key group's private key (signs media
#: URLs) and the API keys of the write routes.
API_SECRET_CONTEXT = {
    "cdn_private_key_secret": "REEL_CDN_PRIVATE_KEY",
    "api_keys_secret": "REEL_API_KEYS",
}
SECRET_REFERENCE = "secretsmanager:"  # chalicelib.settings.SECRETS_MANAGER_PREFIX
#: The IAM actions of what the adapters call, nothing more (a DynamoDB transaction is
#: authorized per item action; SendMessageBatch as SendMessage).
S3_READ = ["s3:GetObject"]  # get_object, download_file, head_object
S3_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]  # put_object, upload_file (multipart)
#: On the bucket itself: without it, head_object on a missing key answers 403, not the 404 that
#: S3BlobStore.exists (the segment cache, thumbnails) relies on.
S3_LIST = ["s3:ListBucket"]
JOB_STORE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
#: DynamoDeliveryStore (in the jobs table): a delivery's index entries move, `enable` deletes.
DELIVERY_STORE = [*JOB_STORE, "dynamodb:DeleteItem"]
#: DynamoEventStore's writer: conditional puts and the campaign's Query.
EVENT_STORE = ["dynamodb:PutItem", "dynamodb:Query"]
#: Powertools' DynamoDBPersistenceLayer (the render handler's idempotency records).
IDEMPOTENCY = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]


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


class ReelStack(cdk.Stack):
    """Everything Reel needs on AWS; idle, it costs (almost) nothing."""

    def _pk_sk_table(self, id: str) -> dynamodb.Table:
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
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _secret_arn(self, name: str) -> str:
        """The ARN pattern of the secret named `name` in this account and region: Secrets
        Manager appends `-` and six random characters to a secret's name in its ARN."""
        return self.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{name}-??????",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

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
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        prefix = self.stack_name.lower()

        # ── storage ───────────────────────────────────────────────────────────────────────
        # The bucket's notification names the Incoming function, so CloudFormation creates the
        # bucket after that function. Everything upstream of it (the API role, the state
        # machine, the distribution) therefore refers to the bucket by its name, never by Ref,
        # through `media` below; only the bucket policy touches the bucket resource itself.
        bucket_name = cdk.Fn.join("-", [prefix, "media", self.account, self.region])
        bucket = s3.Bucket(
            self,
            "Media",
            bucket_name=bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=cdk.Duration.days(1)),
                s3.LifecycleRule(prefix="sfn-results/", expiration=cdk.Duration.days(30)),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        media = s3.Bucket.from_bucket_attributes(
            self, "MediaByName", bucket_name=bucket_name, region=self.region
        )

        jobs = self._pk_sk_table("Jobs")
        idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            removal_policy=cdk.RemovalPolicy.DESTROY,  # only short-lived idempotency records
        )

        # ── tracking: the player's events, the relay queue toward the CRM, the token key ───
        events = self._pk_sk_table("Events")
        relay_dead_letters = sqs.Queue(
            self,
            "RelayDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),  # the longest SQS keeps a message
        )
        relay = sqs.Queue(
            self,
            "Relay",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for a Lambda consumer: six times its timeout.
            visibility_timeout=cdk.Duration.seconds(6 * SHORT_TIMEOUT),
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=RELAY_MAX_RECEIVES, queue=relay_dead_letters
            ),
        )
        # The HMAC key of page tokens: lost or changed, every link already sent stops counting.
        tracking_secret = secretsmanager.Secret(
            self,
            "TrackingSecret",
            description=f"{self.stack_name}: HMAC key of landing-page tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # ── CDN: the private bucket through CloudFront (OAC), signed URLs only ────────────
        public_key = cloudfront.PublicKey(
            self,
            "MediaPublicKey",
            encoded_key=public_key_pem,
            comment="Reel signed media URLs; the private key stays with the API's secret",
        )
        key_group = cloudfront.KeyGroup(self, "MediaKeyGroup", items=[public_key])
        oac = cloudfront.S3OriginAccessControl(
            self, "MediaOac", signing=cloudfront.Signing.SIGV4_ALWAYS
        )
        distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment=f"{self.stack_name} media",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    media,
                    origin_access_control=oac,
                    origin_access_levels=[cloudfront.AccessLevel.READ],
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                trusted_key_groups=[key_group],
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
        )
        cdk.Annotations.of(distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "the bucket policy statement for the OAC is added on the bucket itself below",
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontOriginAccessControl",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("*")],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": self.format_arn(
                            service="cloudfront",
                            region="",
                            resource="distribution",
                            resource_name=distribution.distribution_id,
                        )
                    }
                },
            )
        )

        # ── the render image: one asset, four functions ───────────────────────────────────
        common_env = {
            "REEL_BACKEND": "aws",
            "REEL_BUCKET": bucket_name,
            "REEL_TABLE": jobs.table_name,
            "REEL_IDEMPOTENCY_TABLE": idempotency.table_name,
            "POWERTOOLS_SERVICE_NAME": "reel",
        }

        def allow(role: iam.IRole, sid: str, actions: list[str], resources: list[str]) -> None:
            role.add_to_principal_policy(
                iam.PolicyStatement(sid=sid, actions=actions, resources=resources)
            )

        def lambda_role(name: str, description: str) -> iam.Role:
            return iam.Role(
                self,
                name,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=description,
            )

        def image_function(
            name: str,
            handler: str,
            *,
            memory: int,
            timeout: int,
            role: iam.IRole,
            storage: int = 512,
            environment: dict[str, str] | None = None,
        ) -> lambda_.DockerImageFunction:
            log_group = logs.LogGroup(
                self,
                f"{name}Logs",
                retention=LOG_RETENTION,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            log_group.grant_write(role)
            return lambda_.DockerImageFunction(
                self,
                name,
                code=lambda_.DockerImageCode.from_image_asset(
                    directory=str(ROOT),
                    file=DOCKERFILE,
                    cmd=[handler],
                    exclude=IMAGE_CONTEXT,
                    ignore_mode=cdk.IgnoreMode.DOCKER,
                    platform=ecr_assets.Platform.LINUX_AMD64,
                ),
                architecture=lambda_.Architecture.X86_64,
                memory_size=memory,
                ephemeral_storage_size=cdk.Size.mebibytes(storage),
                timeout=cdk.Duration.seconds(timeout),
                environment=common_env if environment is None else environment,
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
            )

        # One role per function, each allowed what its handler does (CDK's grant_* helpers
        # give more: deletes, scans, batch writes, tags, every Get*/List* of the bucket).
        objects, bucket_arn = media.arn_for_objects("*"), media.bucket_arn
        # Render and Finalize queue a completion notice for the relay (pipeline/service.py).
        notifying_env = {**common_env, "REEL_RELAY_QUEUE_URL": relay.queue_url}

        render_role = lambda_role("RenderRole", "Reel render: one recipient, a chunk of a stream")
        render = image_function(
            "Render",
            RENDER_HANDLER,
            memory=3008,
            timeout=LONG_TIMEOUT,
            storage=4096,
            role=render_role,
            environment=notifying_env,
        )
        allow(render_role, "Media", [*S3_READ, *S3_WRITE], [objects])
        allow(render_role, "MediaList", S3_LIST, [bucket_arn])
        allow(render_role, "Jobs", JOB_STORE, [jobs.table_arn])
        allow(render_role, "Idempotency", IDEMPOTENCY, [idempotency.table_arn])
        allow(render_role, "Completions", ["sqs:SendMessage"], [relay.queue_arn])

        plan_role = lambda_role("PlanRole", "Reel batch plan: items and shared segments")
        plan = image_function(
            "Plan",
            PLAN_HANDLER,
            memory=3008,
            timeout=LONG_TIMEOUT,
            storage=4096,
            role=plan_role,
        )
        allow(plan_role, "Media", [*S3_READ, *S3_WRITE], [objects])
        allow(plan_role, "MediaList", S3_LIST, [bucket_arn])
        allow(plan_role, "Jobs", JOB_STORE, [jobs.table_arn])

        finalize_role = lambda_role("FinalizeRole", "Reel batch finalize: counts, completion")
        finalize = image_function(
            "Finalize",
            FINALIZE_HANDLER,
            memory=512,
            timeout=SHORT_TIMEOUT,
            role=finalize_role,
            environment=notifying_env,
        )
        allow(finalize_role, "Jobs", JOB_STORE, [jobs.table_arn])
        allow(finalize_role, "Completions", ["sqs:SendMessage"], [relay.queue_arn])

        failure_role = lambda_role("RecordFailureRole", "Reel batch: a failed recipient or batch")
        failure = image_function(
            "RecordFailure", FAILURE_HANDLER, memory=512, timeout=SHORT_TIMEOUT, role=failure_role
        )
        allow(failure_role, "Jobs", JOB_STORE, [jobs.table_arn])

        # ── the batch state machine (its ASL is built by chalicelib, not here) ────────────
        from chalicelib.pipeline.statemachine import RESULTS_PREFIX, definition

        machine_name = f"{self.stack_name}-batch"
        machine_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        asl = definition(
            plan_function=plan.function_arn,
            render_function=render.function_arn,
            finalize_function=finalize.function_arn,
            failure_function=failure.function_arn,
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            results_bucket=bucket_name,
            render_timeout=LONG_TIMEOUT,
        )
        machine_role = iam.Role(
            self,
            "BatchRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Reel batch state machine (Distributed Map)",
        )
        for fn in (plan, render, finalize, failure):
            fn.grant_invoke(machine_role)  # the function and its versions (`:*`)
        machine_role.add_to_policy(
            iam.PolicyStatement(
                sid="DistributedMapChildren",
                actions=["states:StartExecution"],
                resources=[machine_arn],
            )
        )
        machine_role.add_to_policy(
            iam.PolicyStatement(
                sid="DistributedMapChildExecutions",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{machine_name}/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        machine_role.add_to_policy(
            iam.PolicyStatement(
                sid="ItemReader",
                actions=["s3:GetObject"],
                resources=[media.arn_for_objects("*")],
            )
        )
        machine_role.add_to_policy(
            iam.PolicyStatement(
                sid="ResultWriter",
                actions=[
                    "s3:PutObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[media.arn_for_objects(f"{RESULTS_PREFIX}/*")],
            )
        )
        machine_logs = logs.LogGroup(
            self,
            "BatchLogs",
            log_group_name=f"/aws/vendedlogs/states/{machine_name}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "Batch",
            state_machine_name=machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(asl)),
            role=machine_role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ERROR),
        )

        # ── the API (Chalice) and the S3 trigger ──────────────────────────────────────────
        api_role = iam.Role(
            self,
            "ApiRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Reel HTTP API and its S3 trigger (Chalice functions)",
        )
        api_logs = logs.LogGroup(
            self, "ApiLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        api_logs.grant_write(api_role)
        # Uploads, bundles, thumbnails; reads of media, sources and segments. No deletes.
        allow(api_role, "Media", [*S3_READ, *S3_WRITE], [objects])
        allow(api_role, "MediaList", S3_LIST, [bucket_arn])
        allow(api_role, "Jobs", DELIVERY_STORE, [jobs.table_arn])  # and the deliveries' routes
        machine.grant_start_execution(api_role)
        render.grant_invoke(api_role)
        api_role.add_to_policy(
            iam.PolicyStatement(
                sid="EventStore",  # DynamoEventStore: conditional puts, the campaign's Query
                actions=EVENT_STORE,
                resources=[events.table_arn],
            )
        )
        api_role.add_to_policy(
            iam.PolicyStatement(
                sid="RelayQueue",  # SqsQueue: SendMessageBatch is authorized as SendMessage
                actions=["sqs:SendMessage"],
                resources=[relay.queue_arn],
            )
        )
        api_role.add_to_policy(
            iam.PolicyStatement(
                sid="XRay",  # X-Ray takes no resource-level permissions
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],
            )
        )
        api_env = {
            **common_env,
            "REEL_STATE_MACHINE_ARN": machine.state_machine_arn,
            "REEL_RENDER_FUNCTION": render.function_name,
            "REEL_CDN_DOMAIN": distribution.distribution_domain_name,
            "REEL_CDN_KEY_ID": public_key.public_key_id,
            "REEL_EVENTS_TABLE": events.table_name,
            "REEL_RELAY_QUEUE_URL": relay.queue_url,
            # A reference, resolved by the settings at cold start: the value never sits in the
            # template or the functions' configuration (see infra/README.md).
            "REEL_TRACKING_SECRET": SECRET_REFERENCE + tracking_secret.secret_arn,
            # The API plans renders and streams (cache keys name the ffmpeg) without an ffmpeg
            # of its own: the pinned build's version, read here from the same wheel.
            "REEL_FFMPEG_VERSION": ffmpeg_version(),
        }
        secrets_read = [tracking_secret.secret_arn]
        # The key group's private key (PEM), kept by the operator in Secrets Manager under the
        # name given as context `cdn_private_key_secret`: with it the API signs CloudFront URLs;
        # without it, media URLs are presigned S3 URLs (see infra/README.md). The API keys
        # likewise (`api_keys_secret`): without them every write route answers 401.
        for context_name, variable in API_SECRET_CONTEXT.items():
            secret_name = self.node.try_get_context(context_name)
            if secret_name:
                api_env[variable] = SECRET_REFERENCE + str(secret_name)
                secrets_read.append(self._secret_arn(str(secret_name)))
        allow(api_role, "Secrets", ["secretsmanager:GetSecretValue"], secrets_read)
        # The API's dependencies ride in a layer built offline from the wheelhouse (infra/deps.py),
        # so `chalice package` zips only app.py and chalicelib: no pip, no index, a second.
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
        api = ChaliceApi(
            self,
            "Api",
            stage=stage,
            source_dir=str(ROOT),
            stage_config={
                "manage_iam_role": False,
                "iam_role_arn": api_role.role_arn,
                "autogen_policy": False,
                "xray": True,
                "environment_variables": api_env,
            },
        )
        for child in api.sam_template.node.children:
            if (
                isinstance(child, cdk.CfnResource)
                and child.cfn_resource_type == "AWS::Serverless::Function"
            ):
                child.add_property_override("Runtime", deps.LAMBDA_RUNTIME)
                child.add_property_override("Layers", [layer.layer_version_arn])
                child.add_property_override("LoggingConfig.LogGroup", api_logs.log_group_name)

        incoming = api.get_function(INCOMING_FUNCTION)
        permission = lambda_.CfnPermission(
            self,
            "IncomingFromMedia",
            action="lambda:InvokeFunction",
            function_name=incoming.function_arn,
            principal="s3.amazonaws.com",
            source_account=self.account,
            source_arn=media.bucket_arn,
        )
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    function=incoming.function_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[
                                s3.CfnBucket.FilterRuleProperty(
                                    name="prefix", value=INCOMING_PREFIX
                                )
                            ]
                        )
                    ),
                )
            ]
        )
        cfn_bucket.add_resource_dependency(
            permission
        )  # S3 checks the permission when it saves this

        # ── the relay: relay queue → deliveries to the CRM connectors ───────────────────
        # Its own role: consume the relay queue, the deliveries (and the templates, pages and
        # recipients it reads) in the jobs table, the events it aggregates, and the templates'
        # bundles (rules.yaml) in the bucket; nothing else.
        relay_role = iam.Role(
            self,
            "RelayRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Reel relay: SQS relay queue to the CRM connectors",
        )
        relay_env = {k: v for k, v in common_env.items() if k != "REEL_IDEMPOTENCY_TABLE"}
        relay_env |= {
            "REEL_EVENTS_TABLE": events.table_name,
            # The last receive before the dead-letter queue is the last attempt: a delivery
            # that fails it is dead-lettered in the store, where it can be redelivered.
            "REEL_RELAY_MAX_ATTEMPTS": str(RELAY_MAX_RECEIVES),
        }
        for context_name, variable in RELAY_CONTEXT.items():
            value = self.node.try_get_context(context_name)
            if value:
                relay_env[variable] = str(value)
        relay_secrets = []
        for context_name, variable in RELAY_SECRET_CONTEXT.items():
            secret_name = self.node.try_get_context(context_name)
            if secret_name:
                relay_env[variable] = SECRET_REFERENCE + str(secret_name)
                relay_secrets.append(self._secret_arn(str(secret_name)))
        relay_fn = image_function(
            "RelayWorker",
            RELAY_HANDLER,
            memory=512,
            timeout=SHORT_TIMEOUT,  # the queue's visibility timeout is six times this
            role=relay_role,
            environment=relay_env,
        )
        # Partial batch responses: a record whose deliveries are still pending comes back after
        # the visibility timeout (the retry's backoff); the others are deleted. The event
        # source grants the queue's consume actions on this queue only.
        relay_fn.add_event_source(
            event_sources.SqsEventSource(
                relay, batch_size=RELAY_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        relay_role.add_to_policy(
            iam.PolicyStatement(
                sid="Deliveries",  # DynamoDeliveryStore (transactions are authorized per item)
                actions=DELIVERY_STORE,
                resources=[jobs.table_arn],
            )
        )
        relay_role.add_to_policy(
            iam.PolicyStatement(
                # A recipient's events, for the rules' `recipient` aggregate; and the event it
                # is handed, stored if ingest queued it but did not get to store it.
                sid="Events",
                actions=EVENT_STORE,
                resources=[events.table_arn],
            )
        )
        relay_role.add_to_policy(
            iam.PolicyStatement(
                sid="TemplateBundles",  # the campaign's rules.yaml rides in its bundle
                actions=["s3:GetObject"],
                resources=[media.arn_for_objects("templates/*")],
            )
        )
        if relay_secrets:  # the connectors' secrets given as context, nothing else
            allow(relay_role, "Secrets", ["secretsmanager:GetSecretValue"], relay_secrets)

        cdk.CfnOutput(self, "MediaBucket", value=bucket_name)
        cdk.CfnOutput(self, "CdnDomain", value=distribution.distribution_domain_name)
        cdk.CfnOutput(self, "CdnKeyId", value=public_key.public_key_id)
        cdk.CfnOutput(self, "BatchStateMachine", value=machine.state_machine_arn)
        cdk.CfnOutput(self, "RenderFunction", value=render.function_name)
        cdk.CfnOutput(self, "EventsTable", value=events.table_name)
        cdk.CfnOutput(self, "RelayQueueUrl", value=relay.queue_url)
        cdk.CfnOutput(self, "RelayDeadLetterQueueUrl", value=relay_dead_letters.queue_url)
        cdk.CfnOutput(self, "RelayFunction", value=relay_fn.function_name)
        cdk.CfnOutput(self, "TrackingSecretArn", value=tracking_secret.secret_arn)
