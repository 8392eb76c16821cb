"""The synthesized Reel stack: cfn-lint clean, private media behind CloudFront, least privilege."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra import deps
from tests.infra import synth
from tests.infra.synth import STACK

RELAY_HANDLER = "chalicelib.handlers.relay.handler"


@pytest.fixture(scope="module")
def cdk_out() -> Path:
    return synth.cdk_out()  # once per test process (see tests/infra/synth.py for the context)


@pytest.fixture(scope="module")
def template_json(cdk_out: Path) -> dict[str, Any]:
    return synth.template_json()


@pytest.fixture(scope="module")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)


@pytest.fixture(scope="module")
def ids(template_json: dict[str, Any]) -> dict[str, str]:
    """Reel's name of a resource (Events, Relay, ApiRole…) → its logical id (synth.names)."""
    return synth.logical_ids(template_json)


def _resources(template_json: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == kind}


def _flatten(value: Any) -> str:
    """A Fn::Join'd string with each token replaced by a placeholder (enough to parse JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_flatten(p) for p in parts)
    return "TOKEN"


def test_cfn_lint_reports_no_errors(cdk_out: Path) -> None:
    # GIVEN the synthesized template WHEN cfn-lint checks it (SAM transform included)
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", str(cdk_out / f"{STACK}.template.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN nothing is an error (warnings are allowed) and cfn-lint did not crash
    matches = json.loads(result.stdout or "[]")
    errors = [m for m in matches if m["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=2)
    assert result.returncode & 0b11 == 0, result.stderr  # bit 1: crash, bit 2: errors


def test_bucket_is_private_encrypted_and_ssl_only(
    template: Template, template_json: dict[str, Any]
) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
        },
    )
    # The media bucket's policy (the access-log bucket has one of its own, for the log writers)
    (policy,) = [
        p
        for p in _resources(template_json, "AWS::S3::BucketPolicy").values()
        if "NotificationConfiguration"
        in template_json["Resources"][p["Properties"]["Bucket"]["Ref"]]["Properties"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # Only CloudFront (through the OAC, for this distribution) may read objects.
    (oac_read,) = [s for s in statements if s["Effect"] == "Allow"]
    assert oac_read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert oac_read["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in oac_read["Condition"]["StringEquals"]


def test_cloudfront_reads_through_oac_and_requires_signed_urls(template: Template) -> None:
    template.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    template.resource_count_is("AWS::CloudFront::CloudFrontOriginAccessIdentity", 0)
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": Match.object_like(
                {"OriginAccessControlOriginType": "s3", "SigningBehavior": "always"}
            )
        },
    )
    template.resource_count_is("AWS::CloudFront::PublicKey", 1)
    template.resource_count_is("AWS::CloudFront::KeyGroup", 1)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "Origins": [
                        Match.object_like(
                            {
                                "OriginAccessControlId": Match.object_like(
                                    {"Fn::GetAtt": Match.any_value()}
                                )
                            }
                        )
                    ],
                    "DefaultCacheBehavior": Match.object_like(
                        {
                            "TrustedKeyGroups": [Match.object_like({"Ref": Match.any_value()})],
                            "ViewerProtocolPolicy": "redirect-to-https",
                        }
                    ),
                }
            )
        },
    )


def test_tables(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_events_table(template_json: dict[str, Any], ids: dict[str, str]) -> None:
    # The DynamoEventStore table: pk/sk strings, on demand, PITR, kept on stack deletion.
    events = template_json["Resources"][ids["Events"]]
    assert events["Type"] == "AWS::DynamoDB::Table"
    props = events["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "GlobalSecondaryIndexes" not in props
    assert events["DeletionPolicy"] == "Retain"


def test_relay_queue_has_a_dead_letter_queue_and_sse(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    queues = _resources(template_json, "AWS::SQS::Queue")
    relay_id, dlq_id = ids["Relay"], ids["RelayDeadLetters"]
    render_dlq_id = ids["RenderDeadLetters"]  # see the render function's asynchronous config
    incoming_dlq_id = ids["IncomingDeadLetters"]  # and the S3 trigger's
    every = {relay_id, dlq_id, render_dlq_id, incoming_dlq_id}
    assert set(queues) == every
    relay = queues[relay_id]["Properties"]
    assert relay["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    for queue in every:
        assert queues[queue]["Properties"]["SqsManagedSseEnabled"] is True
    # Every one refuses requests that are not over TLS.
    policies = _resources(template_json, "AWS::SQS::QueuePolicy").values()
    ssl_only = {
        q["Ref"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for q in p["Properties"]["Queues"]
    }
    assert ssl_only == every


def test_render_function_retries_asynchronous_invocations_then_dead_letters_them(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    # Stream groups are asynchronous invocations (landing/stream.py, LambdaRenders): a failed
    # one is retried by Lambda, and one that keeps failing lands in a queue that can be listed.
    (config,) = _resources(template_json, "AWS::Lambda::EventInvokeConfig").values()
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": ids["Render"]}
    assert props["MaximumRetryAttempts"] == 2
    assert props["MaximumEventAgeInSeconds"] == 3600
    failure = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert failure == {"Fn::GetAtt": [ids["RenderDeadLetters"], "Arn"]}


def test_tracking_secret_is_generated_by_the_stack(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    ((secret_id, secret),) = _resources(template_json, "AWS::SecretsManager::Secret").items()
    assert "GenerateSecretString" in secret["Properties"]
    assert "SecretString" not in secret["Properties"]  # no value in the template
    assert secret["DeletionPolicy"] == "Retain"
    # The API gets a reference (resolved by its settings at cold start), not the value: nothing
    # secret sits in the function's configuration.
    api = _resources(template_json, "AWS::Serverless::Function")["APIHandler"]
    value = api["Properties"]["Environment"]["Variables"]["REEL_TRACKING_SECRET"]
    assert value == {"Fn::Join": ["", ["secretsmanager:", {"Ref": secret_id}]]}
    assert "{{resolve:" not in json.dumps(template_json)
    # AND only the API's role may read it
    readers = {
        rid for rid, s in _statements(template_json) if {"Ref": secret_id} in _listed(s["Resource"])
    }
    assert readers == {ids["ApiRole"]}


def test_api_role_reaches_events_and_relay_queue_only_as_needed(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    events_id, relay_id = ids["Events"], ids["Relay"]
    names = synth.names(template_json)

    def grants(resource_id: str) -> dict[str, set[str]]:
        """role-ish policy id → the actions its statements allow on `resource_id`."""
        found: dict[str, set[str]] = {}
        for rid, s in _statements(template_json):
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if any(resource_id in json.dumps(r) for r in resources):
                actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                found.setdefault(rid, set()).update(actions)
        return found

    def by_role(found: dict[str, set[str]]) -> dict[str, set[str]]:
        return {names[rid]: actions for rid, actions in found.items()}

    # Only the API role (which writes them) and the relay's role (which reads them, and stores
    # the one it is handed if ingest did not get to) touch them, with exactly these actions
    # (the API also deletes a person's events when asked to erase them).
    assert by_role(grants(events_id)) == {
        "ApiRole": {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem"},
        "RelayRole": {"dynamodb:PutItem", "dynamodb:Query"},
    }
    # The API, Render and Finalize queue messages (events, completion notices); the relay
    # function consumes them.
    assert by_role(grants(relay_id)) == {
        "ApiRole": {"sqs:SendMessage"},
        "RenderRole": {"sqs:SendMessage"},
        "FinalizeRole": {"sqs:SendMessage"},
        "RelayRole": {
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        },
    }
    # And the API knows where they are.
    for fn in _resources(template_json, "AWS::Serverless::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["REEL_EVENTS_TABLE"] == {"Ref": events_id}
        assert env["REEL_RELAY_QUEUE_URL"] == {"Ref": relay_id}
        assert "REEL_TRACKING_SECRET" in env


def test_api_knows_the_pinned_ffmpeg_without_running_one(template_json: dict[str, Any]) -> None:
    from chalicelib.render.ffmpeg import ffmpeg_version

    api = _resources(template_json, "AWS::Serverless::Function")["APIHandler"]
    assert api["Properties"]["Environment"]["Variables"]["REEL_FFMPEG_VERSION"] == ffmpeg_version()


def test_api_signs_media_urls_with_the_named_secret(template_json: dict[str, Any]) -> None:
    api = _resources(template_json, "AWS::Serverless::Function")["APIHandler"]
    env = api["Properties"]["Environment"]["Variables"]
    assert env["REEL_CDN_PRIVATE_KEY"] == f"secretsmanager:{synth.CDN_KEY_SECRET}"
    assert env["REEL_API_KEYS"] == f"secretsmanager:{synth.API_KEYS_SECRET}"
    assert "REEL_CDN_DOMAIN" in env and "REEL_CDN_KEY_ID" in env


def test_state_machine_is_standard_with_a_distributed_map(template_json: dict[str, Any]) -> None:
    (machine,) = _resources(template_json, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    asl = json.loads(_flatten(machine["Properties"]["DefinitionString"]))
    maps = [s for s in asl["States"].values() if s["Type"] == "Map"]
    assert [m["ItemProcessor"]["ProcessorConfig"]["Mode"] for m in maps] == ["DISTRIBUTED"]
    assert maps[0]["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert maps[0]["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert "ResultWriter" in maps[0]
    # each child takes a batch of recipients (the setting's default), of the kind make cost chose
    from chalicelib.pipeline.statemachine import CHILD_EXECUTION_TYPE
    from chalicelib.settings import Settings

    assert maps[0]["ItemBatcher"]["MaxItemsPerBatch"] == Settings().render_batch_size
    assert maps[0]["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == CHILD_EXECUTION_TYPE


def test_render_and_batch_steps_are_image_functions_of_one_asset(
    template_json: dict[str, Any], cdk_out: Path
) -> None:
    functions = _resources(template_json, "AWS::Lambda::Function").values()
    by_cmd = {f["Properties"]["ImageConfig"]["Command"][0]: f["Properties"] for f in functions}
    assert set(by_cmd) == {
        "chalicelib.handlers.render.handler",
        "chalicelib.handlers.batch.plan",
        "chalicelib.handlers.batch.finalize",
        "chalicelib.handlers.batch.record_failure",
        "chalicelib.handlers.relay.handler",
    }
    assert all(p["PackageType"] == "Image" for p in by_cmd.values())
    render = by_cmd["chalicelib.handlers.render.handler"]
    assert render["MemorySize"] == 3008
    assert render["EphemeralStorage"] == {"Size": 4096}
    # Its warm /tmp segment cache is capped below /tmp, leaving room for the render itself.
    cap = int(render["Environment"]["Variables"]["REEL_CACHE_MAX_BYTES"])
    assert 0 < cap <= render["EphemeralStorage"]["Size"] * 2**20 // 2
    assert render["Timeout"] == 900
    assert by_cmd["chalicelib.handlers.batch.finalize"]["Timeout"] < 900
    # One docker image asset whose build context holds only what the Dockerfile copies.
    assets = json.loads((cdk_out / f"{STACK}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "layers/ffmpeg/Dockerfile"
    context = cdk_out / image["source"]["directory"]
    assert sorted(p.name for p in context.iterdir()) == [
        "README.md",
        "app.py",
        "chalicelib",
        "layers",
        "pyproject.toml",
    ]
    assert not list(context.rglob("__pycache__"))
    assert sum(p.stat().st_size for p in context.rglob("*") if p.is_file()) < 50 * 2**20


def test_chalice_api_uses_our_role_layer_and_environment(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    functions = _resources(template_json, "AWS::Serverless::Function")
    assert {"APIHandler", "Incoming"} <= set(functions)
    assert "DefaultRole" not in template_json["Resources"]  # no chalice-managed role
    for props in (f["Properties"] for f in functions.values()):
        assert props["Role"]["Fn::GetAtt"] == [ids["ApiRole"], "Arn"]
        assert props["Runtime"] == deps.LAMBDA_RUNTIME
        assert len(props["Layers"]) == 1
        env = props["Environment"]["Variables"]
        assert env["REEL_BACKEND"] == "aws"
        for name in (
            "REEL_BUCKET",
            "REEL_TABLE",
            "REEL_IDEMPOTENCY_TABLE",
            "REEL_STATE_MACHINE_ARN",
            "REEL_RENDER_FUNCTION",
            "REEL_EVENTS_TABLE",
            "REEL_RELAY_QUEUE_URL",
            "REEL_TRACKING_SECRET",
        ):
            assert env[name], name


def test_objects_under_incoming_trigger_the_incoming_function(
    template_json: dict[str, Any],
) -> None:
    (bucket,) = [  # the media bucket (not the access-log one)
        b
        for b in _resources(template_json, "AWS::S3::Bucket").values()
        if "NotificationConfiguration" in b["Properties"]
    ]
    (config,) = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]
    assert config["Function"] == {"Fn::GetAtt": ["Incoming", "Arn"]}
    (permission_id,) = [
        d
        for d in bucket["DependsOn"]
        if template_json["Resources"][d]["Type"] == "AWS::Lambda::Permission"
    ]
    permission = template_json["Resources"][permission_id]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["FunctionName"] == {"Fn::GetAtt": ["Incoming", "Arn"]}


def _relay_function(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (rid, f["Properties"])
        for rid, f in _resources(template_json, "AWS::Lambda::Function").items()
        if f["Properties"].get("ImageConfig", {}).get("Command") == [RELAY_HANDLER]
    ]
    return found


def test_relay_function_consumes_the_relay_queue_with_partial_batch_responses(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    # GIVEN the relay function (the render image, the relay handler as its command)
    relay_fn_id, relay_fn = _relay_function(template_json)
    assert relay_fn["PackageType"] == "Image"
    assert relay_fn["Role"]["Fn::GetAtt"] == [ids["RelayRole"], "Arn"]
    assert relay_fn["Timeout"] == 60
    # THEN one event source feeds it the relay queue, ten records at a time, and it may report
    # which records failed
    queues = _resources(template_json, "AWS::SQS::Queue")
    relay_id = ids["Relay"]
    (mapping,) = _resources(template_json, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": relay_fn_id}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [relay_id, "Arn"]}
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # AND the queue's visibility timeout leaves room for six invocations
    visibility = queues[relay_id]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * relay_fn["Timeout"]


def test_relay_function_environment_comes_from_context(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    _, relay_fn = _relay_function(template_json)
    env = relay_fn["Environment"]["Variables"]
    assert env["REEL_BACKEND"] == "aws"
    assert env["REEL_EVENTS_TABLE"] == {"Ref": ids["Events"]}
    assert env["REEL_RELAY_MAX_ATTEMPTS"] == "5"  # the queue's maxReceiveCount
    assert env["REEL_WEBHOOK_URL"] == "https://crm.example.com/hooks/reel"
    assert env["REEL_WEBHOOK_SECRETS"] == f"secretsmanager:{synth.WEBHOOK_SECRETS_SECRET}"
    # Connectors without context stay off: their variables keep the settings' defaults.
    for name in (
        "REEL_HUBSPOT_TOKEN",
        "REEL_HUBSPOT_BASE_URL",
        "REEL_SALESFORCE_INSTANCE_URL",
        "REEL_SALESFORCE_TOKEN",
        "REEL_IDEMPOTENCY_TABLE",
        "REEL_TRACKING_SECRET",
    ):
        assert name not in env, name


def test_relay_role_is_least_privilege(template_json: dict[str, Any], ids: dict[str, str]) -> None:
    jobs_id, events_id = ids["Jobs"], ids["Events"]
    statements = [s for rid, s in _statements(template_json) if rid == ids["RelayRole"]]
    by_sid = {s.get("Sid"): s for s in statements}
    assert set(by_sid["Deliveries"]["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    # The webhook's secrets (given as context), and no other secret
    assert by_sid["Secrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert _flatten(by_sid["Secrets"]["Resource"]).endswith(
        f":secret:{synth.WEBHOOK_SECRETS_SECRET}-??????"
    )
    assert by_sid["Deliveries"]["Resource"] == {"Fn::GetAtt": [jobs_id, "Arn"]}
    assert by_sid["Events"]["Resource"] == {"Fn::GetAtt": [events_id, "Arn"]}
    assert by_sid["TemplateBundles"]["Action"] == "s3:GetObject"
    assert _flatten(by_sid["TemplateBundles"]["Resource"]).endswith("/templates/*")
    # (every role's whole grant, action by action: tests/reliability/test_security_iam.py)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template_json: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) of every identity policy, inline or not."""
    found = []
    for rid, res in template_json["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Policy":
            for role in props["Roles"]:
                found += [(role["Ref"], s) for s in props["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(rid, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_api_requirements_follow_pyproject() -> None:
    reqs = deps.requirements()
    names = {deps._name(r) for r in reqs}
    assert "chalice" not in names and "imageio-ffmpeg" not in names
    assert {"pydantic", "pillow", "aws-lambda-powertools", "boto3"} <= names


def test_reserved_concurrency_keeps_api_and_tracking_capacity_free_during_a_batch(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    from infra.functions import (
        API_CONCURRENCY,
        INCOMING_CONCURRENCY,
        RELAY_CONCURRENCY,
        STREAM_RENDERS,
    )

    resources = template_json["Resources"]
    reserved = {
        name: resources[ids.get(name, name)]["Properties"].get("ReservedConcurrentExecutions")
        for name in ("Render", "RelayWorker", "APIHandler", "Incoming")
    }
    # The render function is capped at the Distributed Map's concurrency plus the streams'
    # room; the API, the relay and the S3 trigger each have capacity a batch cannot take.
    asl = json.loads(_flatten(resources[ids["Batch"]]["Properties"]["DefinitionString"]))
    (render_map,) = [s for s in asl["States"].values() if s["Type"] == "Map"]
    assert reserved["Render"] == render_map["MaxConcurrency"] + STREAM_RENDERS
    assert reserved == {
        "Render": reserved["Render"],
        "RelayWorker": RELAY_CONCURRENCY,
        "APIHandler": API_CONCURRENCY,
        "Incoming": INCOMING_CONCURRENCY,
    }
    # Lambda keeps 100 of an account's (default) 1,000 unreserved: the stack must deploy there.
    assert sum(reserved.values()) <= 900


def test_the_s3_trigger_sends_what_fails_to_a_queue_of_its_own(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    config = template_json["Resources"]["Incoming"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": [ids["IncomingDeadLetters"], "Arn"]},
    }
    assert ids["IncomingDeadLetters"] != ids["RenderDeadLetters"]
