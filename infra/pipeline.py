"""The batch pipeline: the render image's render, plan, finalize and record_failure functions,
and the STANDARD state machine (a Distributed Map) that runs them."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from chalicelib.pipeline.statemachine import RESULTS_PREFIX, definition
from infra import checkov
from infra.functions import (
    IDEMPOTENCY,
    JOB_STORE,
    LOG_RETENTION,
    LONG_TIMEOUT,
    POLLY_SPEAK,
    S3_LIST,
    S3_READ,
    S3_WRITE,
    SEND,
    SHORT_TIMEOUT,
    STREAM_RENDERS,
    allow,
    environment,
    image_function,
    lambda_role,
)
from infra.media import MediaCdn
from infra.tables import Tables

#: The Lambda functions of the image: one asset, one CMD each.
RENDER_HANDLER = "chalicelib.handlers.render.handler"
PLAN_HANDLER = "chalicelib.handlers.batch.plan"
FINALIZE_HANDLER = "chalicelib.handlers.batch.finalize"
FAILURE_HANDLER = "chalicelib.handlers.batch.record_failure"
#: Why the state machine's own functions need neither a dead-letter queue nor a reservation.
SYNCHRONOUS = (
    "invoked synchronously by the batch state machine only, whose Retry and Catch handle a "
    "failure (the recipient or the batch is recorded failed); a DLQ takes async events only"
)
#: The render function's size (what `make cost` prices: bench/cost.py reads these).
RENDER_MEMORY_MB = 3008
RENDER_STORAGE_MB = 4096
#: Its /tmp segment cache and fetched copies (REEL_CACHE_MAX_BYTES): half of /tmp, the other
#: half left to the render in progress (its segments, video and poster before they are stored).
RENDER_CACHE_MAX_BYTES = RENDER_STORAGE_MB * 2**20 // 2
BOUNDED_BY_MAP = (
    "invoked by the batch state machine only: once per batch (plan, finalize) or per failed "
    "item under the Distributed Map's MaxConcurrency, which Render's reservation already bounds"
)


class BatchPipeline(Construct):
    """One role per function, each allowed what its handler does; the state machine's ASL is
    built by chalicelib (pipeline/statemachine.py), not here. Render and Finalize queue a
    completion notice on `relay` (services/notices.py)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        media: MediaCdn,
        tables: Tables,
        relay: sqs.IQueue,
        max_concurrency: int,
        tolerated_failure_percentage: float,
        batch_size: int = 1,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        env = environment(media, tables)
        notifying_env = {**env, "REEL_RELAY_QUEUE_URL": relay.queue_url}
        objects, bucket_arn = media.bucket.arn_for_objects("*"), media.bucket.bucket_arn

        render_role = lambda_role(
            self, "RenderRole", "Reel render: one recipient, a chunk of a stream"
        )
        self.render = image_function(
            self,
            "Render",
            RENDER_HANDLER,
            memory=RENDER_MEMORY_MB,
            timeout=LONG_TIMEOUT,
            storage=RENDER_STORAGE_MB,
            role=render_role,
            environment={**notifying_env, "REEL_CACHE_MAX_BYTES": str(RENDER_CACHE_MAX_BYTES)},
            # A batch of a million never takes more than this: the API and the relay keep theirs.
            reserved_concurrency=max_concurrency + STREAM_RENDERS,
        )
        allow(render_role, "Media", [*S3_READ, *S3_WRITE], [objects])
        allow(render_role, "MediaList", S3_LIST, [bucket_arn])
        allow(render_role, "Jobs", JOB_STORE, [tables.jobs.table_arn])
        allow(render_role, "Idempotency", IDEMPOTENCY, [tables.idempotency.table_arn])
        allow(render_role, "Completions", SEND, [relay.queue_arn])
        # Voice lines (adapters/polly.py): a campaign's lexicon is stored under a name Reel
        # derives (`reel` + a hash). Polly authorizes SynthesizeSpeech and DescribeVoices on
        # "*" only (its API permissions reference).
        lexicons = stack.format_arn(
            service="polly",
            resource="lexicon",
            resource_name="reel*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        allow(render_role, "PollyLexicons", ["polly:PutLexicon"], [lexicons])
        allow(render_role, "Polly", POLLY_SPEAK, ["*"])
        # Stream groups reach the render function by asynchronous invocation (the API's
        # LambdaRenders; single renders too): Lambda retries a failed one twice, then sends the
        # event here, where it can be listed (and replayed by invoking it again).
        self.stream_dead_letters = sqs.Queue(
            self,
            "RenderDeadLetters",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        checkov.skip(self.stream_dead_letters, "CKV_AWS_27", checkov.SQS_MANAGED_SSE)
        self.render.configure_async_invoke(
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(1),
            on_failure=destinations.SqsDestination(self.stream_dead_letters),
        )
        checkov.skip(
            self.render,
            "CKV_AWS_116",
            "asynchronous invocations that fail go to the on-failure destination "
            "RenderDeadLetters (EventInvokeConfig), which keeps the event and the error, unlike "
            "a DLQ; the state machine's synchronous ones are retried and caught by the map",
        )

        plan_role = lambda_role(self, "PlanRole", "Reel batch plan: items and shared segments")
        plan = image_function(
            self,
            "Plan",
            PLAN_HANDLER,
            memory=3008,
            timeout=LONG_TIMEOUT,
            storage=4096,
            role=plan_role,
            environment=env,
        )
        allow(plan_role, "Media", [*S3_READ, *S3_WRITE], [objects])
        allow(plan_role, "MediaList", S3_LIST, [bucket_arn])
        allow(plan_role, "Jobs", JOB_STORE, [tables.jobs.table_arn])
        for fn in (plan,):
            checkov.skip(fn, "CKV_AWS_116", SYNCHRONOUS)
            checkov.skip(fn, "CKV_AWS_115", BOUNDED_BY_MAP)

        finalize_role = lambda_role(self, "FinalizeRole", "Reel batch finalize: counts, completion")
        finalize = image_function(
            self,
            "Finalize",
            FINALIZE_HANDLER,
            memory=512,
            timeout=SHORT_TIMEOUT,
            role=finalize_role,
            environment=notifying_env,
        )
        allow(finalize_role, "Jobs", JOB_STORE, [tables.jobs.table_arn])
        allow(finalize_role, "Completions", SEND, [relay.queue_arn])

        failure_role = lambda_role(
            self, "RecordFailureRole", "Reel batch: a failed recipient or batch"
        )
        failure = image_function(
            self,
            "RecordFailure",
            FAILURE_HANDLER,
            memory=512,
            timeout=SHORT_TIMEOUT,
            role=failure_role,
            environment=env,
        )
        allow(failure_role, "Jobs", JOB_STORE, [tables.jobs.table_arn])
        for fn in (finalize, failure):
            checkov.skip(fn, "CKV_AWS_116", SYNCHRONOUS)
            checkov.skip(fn, "CKV_AWS_115", BOUNDED_BY_MAP)

        machine_name = f"{stack.stack_name}-batch"
        machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        asl = definition(
            plan_function=plan.function_arn,
            render_function=self.render.function_arn,
            finalize_function=finalize.function_arn,
            failure_function=failure.function_arn,
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            results_bucket=media.bucket_name,
            render_timeout=LONG_TIMEOUT,
            batch_size=batch_size,
        )
        role = iam.Role(
            self,
            "BatchRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Reel batch state machine (Distributed Map)",
        )
        for fn in (plan, self.render, finalize, failure):
            fn.grant_invoke(role)  # the function and its versions (`:*`)
        allow(role, "DistributedMapChildren", ["states:StartExecution"], [machine_arn])
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{machine_name}/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(
            role,
            "DistributedMapChildExecutions",
            ["states:DescribeExecution", "states:StopExecution"],
            [executions],
        )
        allow(role, "ItemReader", ["s3:GetObject"], [objects])
        allow(
            role,
            "ResultWriter",
            ["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
            [media.bucket.arn_for_objects(f"{RESULTS_PREFIX}/*")],
        )
        machine_logs = logs.LogGroup(
            self,
            "BatchLogs",
            log_group_name=f"/aws/vendedlogs/states/{machine_name}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        checkov.skip(machine_logs, "CKV_AWS_158", checkov.LOGS_KMS)
        self.machine = sfn.StateMachine(
            self,
            "Batch",
            state_machine_name=machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(asl)),
            role=role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ERROR),
        )
