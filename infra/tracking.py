"""Tracking toward the CRM: the relay queue (and its dead letters), the page tokens' key, and
the relay function that turns queued events and completions into deliveries."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import checkov
from infra.functions import (
    DELIVERY_STORE,
    EVENT_STORE,
    RELAY_CONCURRENCY,
    SHORT_TIMEOUT,
    allow,
    context_secrets,
    environment,
    image_function,
    lambda_role,
)
from infra.media import MediaCdn
from infra.tables import Tables

RELAY_HANDLER = "chalicelib.handlers.relay.handler"
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
#: Secrets: the context names a Secrets Manager secret; the function gets a reference to it and
#: its role may read that secret only (see infra.functions.context_secrets).
RELAY_SECRET_CONTEXT = {
    "webhook_secrets_secret": "REEL_WEBHOOK_SECRETS",
    "hubspot_token_secret": "REEL_HUBSPOT_TOKEN",
    "salesforce_token_secret": "REEL_SALESFORCE_TOKEN",
}


class Tracking(Construct):
    """The relay queue the API (events) and the batch (completions) send to, the function that
    consumes it, and the HMAC key of landing-page tokens."""

    def __init__(self, scope: Construct, id: str, *, media: MediaCdn, tables: Tables) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "RelayDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),  # the longest SQS keeps a message
        )
        self.relay = sqs.Queue(
            self,
            "Relay",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for a Lambda consumer: six times its timeout.
            visibility_timeout=cdk.Duration.seconds(6 * SHORT_TIMEOUT),
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=RELAY_MAX_RECEIVES, queue=self.dead_letters
            ),
        )
        for queue in (self.dead_letters, self.relay):
            checkov.skip(queue, "CKV_AWS_27", checkov.SQS_MANAGED_SSE)
        # The HMAC key of page tokens: lost or changed, every link already sent stops counting.
        self.secret = secretsmanager.Secret(
            self,
            "TrackingSecret",
            description=f"{cdk.Stack.of(self).stack_name}: HMAC key of landing-page tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        checkov.skip(
            self.secret,
            "CKV_AWS_149",
            "encrypted by Secrets Manager's AWS-managed key; only the API's role may read it "
            "(IAM), and a customer key would add a key and its policy for no other reader",
        )

        # The relay function's own role: consume the relay queue, the deliveries (and the
        # templates, pages and recipients it reads) in the jobs table, the events it aggregates,
        # and the templates' bundles (rules.yaml) in the bucket; nothing else.
        role = lambda_role(self, "RelayRole", "Reel relay: SQS relay queue to the CRM connectors")
        env = {k: v for k, v in environment(media, tables).items() if k != "REEL_IDEMPOTENCY_TABLE"}
        env |= {
            "REEL_EVENTS_TABLE": tables.events.table_name,
            # The last receive before the dead-letter queue is the last attempt: a delivery
            # that fails it is dead-lettered in the store, where it can be redelivered.
            "REEL_RELAY_MAX_ATTEMPTS": str(RELAY_MAX_RECEIVES),
        }
        for context_name, variable in RELAY_CONTEXT.items():
            value = self.node.try_get_context(context_name)
            if value:
                env[variable] = str(value)
        secret_env, secrets = context_secrets(self, RELAY_SECRET_CONTEXT)
        self.worker = image_function(
            self,
            "RelayWorker",
            RELAY_HANDLER,
            memory=512,
            timeout=SHORT_TIMEOUT,  # the queue's visibility timeout is six times this
            role=role,
            environment=env | secret_env,
            # Tracking keeps flowing to the CRM while a batch takes the render capacity.
            reserved_concurrency=RELAY_CONCURRENCY,
        )
        checkov.skip(
            self.worker,
            "CKV_AWS_116",
            "fed by an SQS event source (a synchronous poller): a message that fails "
            "RELAY_MAX_RECEIVES times moves to the queue's own RelayDeadLetters",
        )
        # Partial batch responses: a record whose deliveries are still pending comes back after
        # the visibility timeout (the retry's backoff); the others are deleted. The event
        # source grants the queue's consume actions on this queue only.
        self.worker.add_event_source(
            event_sources.SqsEventSource(
                self.relay, batch_size=RELAY_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        # DynamoDeliveryStore (transactions are authorized per item)
        allow(role, "Deliveries", DELIVERY_STORE, [tables.jobs.table_arn])
        # A recipient's events, for the rules' `recipient` aggregate; and the event it is
        # handed, stored if ingest queued it but did not get to store it.
        allow(role, "Events", EVENT_STORE, [tables.events.table_arn])
        # The campaign's rules.yaml rides in its bundle.
        templates = media.bucket.arn_for_objects("templates/*")
        allow(role, "TemplateBundles", ["s3:GetObject"], [templates])
        if secrets:  # the connectors' secrets given as context, nothing else
            allow(role, "Secrets", ["secretsmanager:GetSecretValue"], secrets)
