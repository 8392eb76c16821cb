"""What the stack's constructs share: the render image's functions, their roles, IAM actions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov, deps
from infra.media import MediaCdn
from infra.tables import Tables

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
LONG_TIMEOUT = 900  # render and plan (plan renders the shared static segments)
SHORT_TIMEOUT = 60  # finalize, record_failure and the relay: bookkeeping
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
SECRET_REFERENCE = "secretsmanager:"  # chalicelib.settings.SECRETS_MANAGER_PREFIX
#: The IAM actions of what the adapters call, nothing more (a DynamoDB transaction is
#: authorized per item action; SendMessageBatch as SendMessage). One role per function, each
#: allowed what its handler does: CDK's grant_* helpers give more (deletes, scans, batch
#: writes, tags, every Get*/List* of the bucket).
S3_READ = ["s3:GetObject"]  # get_object, download_file, head_object
S3_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]  # put_object, upload_file (multipart)
#: On the bucket itself: without it, head_object on a missing key answers 403, not the 404 that
#: S3BlobStore.exists (the segment cache, thumbnails) relies on.
S3_LIST = ["s3:ListBucket"]
#: S3BlobStore.delete: the object and each of its versions (erasure, retention).
ERASE_OBJECTS = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
JOB_STORE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
#: DynamoDeliveryStore (in the jobs table): a delivery's index entries move, `enable` deletes.
DELIVERY_STORE = [*JOB_STORE, "dynamodb:DeleteItem"]
#: DynamoEventStore's writer: conditional puts and the campaign's Query.
EVENT_STORE = ["dynamodb:PutItem", "dynamodb:Query"]
#: Powertools' DynamoDBPersistenceLayer (the render handler's idempotency records).
IDEMPOTENCY = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
SEND = ["sqs:SendMessage"]  # SqsQueue: SendMessageBatch is authorized as SendMessage
#: PollySpeech: speak, and list the voices it checks a line's voice against.
POLLY_SPEAK = ["polly:SynthesizeSpeech", "polly:DescribeVoices"]
#: Reserved concurrency (each both a floor and a ceiling, out of the account's 1,000 by
#: default): a batch's renders are capped, so the API and the tracking relay always have
#: capacity of their own. Render: the Distributed Map's MaxConcurrency plus room for streams.
STREAM_RENDERS = 50
API_CONCURRENCY = 100
RELAY_CONCURRENCY = 20
INCOMING_CONCURRENCY = 10


def environment(media: MediaCdn, tables: Tables) -> dict[str, str]:
    """What every function of Reel is configured with: the AWS backend, its bucket and tables."""
    env = {
        "REEL_BACKEND": "aws",
        "REEL_BUCKET": media.bucket_name,
        "REEL_TABLE": tables.jobs.table_name,
        "REEL_IDEMPOTENCY_TABLE": tables.idempotency.table_name,
        "POWERTOOLS_SERVICE_NAME": "reel",
        # Traces carry timings, not what a handler returned or raised: a result names its
        # recipient, an error may quote a record's values (no personal data in traces).
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
    }
    if tables.event_ttl_days is not None:  # retention (infra/retention.py)
        env["REEL_EVENT_TTL_DAYS"] = str(tables.event_ttl_days)
    return env


def allow(role: iam.IRole, sid: str, actions: list[str], resources: list[str]) -> None:
    """Let `role` do `actions` on `resources` (one statement, named `sid`)."""
    role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))


def lambda_role(scope: Construct, id: str, description: str) -> iam.Role:
    """A role Lambda assumes, with no policy yet."""
    return iam.Role(
        scope, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
    )


def image_function(
    scope: Construct,
    id: str,
    handler: str,
    *,
    memory: int,
    timeout: int,
    role: iam.IRole,
    environment: dict[str, str],
    storage: int = 512,
    reserved_concurrency: int | None = None,
) -> lambda_.DockerImageFunction:
    """A function of THE render image (one asset whatever the count) running `handler`, traced,
    logging to a group of its own (`<id>Logs`) that `role` may write."""
    log_group = logs.LogGroup(
        scope, f"{id}Logs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    checkov.skip(log_group, "CKV_AWS_158", checkov.LOGS_KMS)
    log_group.grant_write(role)
    function = lambda_.DockerImageFunction(
        scope,
        id,
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
        environment=environment,
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        reserved_concurrent_executions=reserved_concurrency,
    )
    checkov.skip(function, "CKV_AWS_117", checkov.NO_VPC)
    checkov.skip(function, "CKV_AWS_173", checkov.ENV_KMS)
    return function


def context_secrets(scope: Construct, names: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The secrets named in CDK context: (variable → `secretsmanager:<name>` reference, the ARN
    patterns to grant). The reference is resolved by the function's settings at cold start
    (chalicelib/settings.py), so no secret value sits in the template or the configuration."""
    environment: dict[str, str] = {}
    arns: list[str] = []
    for context_name, variable in names.items():
        secret_name = scope.node.try_get_context(context_name)
        if secret_name:
            environment[variable] = SECRET_REFERENCE + str(secret_name)
            # Secrets Manager appends `-` and six random characters to a name in its ARN.
            arns.append(
                cdk.Stack.of(scope).format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{secret_name}-??????",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            )
    return environment, arns
