"""Least privilege, read from the synthesized CloudFormation: every role may do what its
functions' handlers do — those actions, on those named resources — and nothing else."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tests.infra import synth

#: Actions AWS authorizes on "*" only (no resource-level permissions): X-Ray writes (every
#: traced function, the state machine) and CloudWatch Logs delivery (Step Functions logging).
STAR_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
#: Amazon Polly's speech and voice list take "*" only (its API permissions reference).
SPEECH_STAR_ACTIONS = {"polly:SynthesizeSpeech", "polly:DescribeVoices"}
#: Action wildcards allowed, each with its reason (none today: every action is spelled out).
ACTION_WILDCARDS: dict[str, str] = {}

# Resources, as `label` names them: what the resource is to Reel (`synth.names`: found by how the
# template wires it, not by CDK's logical ids); the media bucket and its objects; a Secrets
# Manager secret by name.
BUCKET, OBJECTS = "media", "media/*"
XRAY = {"xray:PutTraceSegments": {"*"}, "xray:PutTelemetryRecords": {"*"}}
JOBS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"}


def _logs(group: str) -> dict[str, set[str]]:
    return {"logs:CreateLogStream": {group}, "logs:PutLogEvents": {group}}


def _on(resource: str, actions: set[str]) -> dict[str, set[str]]:
    return {a: {resource} for a in actions}


def _merge(*grants: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for grant in grants:
        for action, resources in grant.items():
            out[action] |= resources
    return dict(out)


#: S3BlobStore: get_object / download_file / head_object; put_object / upload_file (multipart
#: may abort); ListBucket so that head_object of a missing key is a 404, not a 403.
MEDIA_RW = _merge(
    _on(OBJECTS, {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}),
    _on(BUCKET, {"s3:ListBucket"}),
)
#: What each function's role may do (action → resources), from what its handler does.
EXPECTED: dict[str, dict[str, set[str]]] = {
    # Render: one recipient or one stream chunk — reads assets and segments, writes segments,
    # videos and posters; its job and page; Powertools idempotency; the completion notice.
    "chalicelib.handlers.render.handler": _merge(
        _logs("RenderLogs"),
        XRAY,
        MEDIA_RW,
        _on("Jobs", JOBS),
        _on(
            "Idempotency",
            {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        ),
        _on("Relay", {"sqs:SendMessage"}),
        # Lambda's on-failure destination of its asynchronous invocations (stream groups).
        _on("RenderDeadLetters", {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}),
        # Voice lines: the campaign's lexicon under Reel's names; speech and voices on "*".
        _on("arn:aws:polly:{region}:{account}:lexicon/reel*", {"polly:PutLexicon"}),
        _on("*", {"polly:SynthesizeSpeech", "polly:DescribeVoices"}),
    ),
    # Plan: reads the source and the bundle, writes the items JSON and the shared segments.
    "chalicelib.handlers.batch.plan": _merge(_logs("PlanLogs"), XRAY, MEDIA_RW, _on("Jobs", JOBS)),
    # Finalize: counts results, closes the batch, queues its completion notice. No S3.
    "chalicelib.handlers.batch.finalize": _merge(
        _logs("FinalizeLogs"), XRAY, _on("Jobs", JOBS), _on("Relay", {"sqs:SendMessage"})
    ),
    # RecordFailure: one result, or the batch's state. Nothing but the jobs table.
    "chalicelib.handlers.batch.record_failure": _merge(
        _logs("RecordFailureLogs"), XRAY, _on("Jobs", JOBS)
    ),
    # The relay: consumes its queue, keeps deliveries (and reads templates, pages) in the jobs
    # table, reads a recipient's events (and stores the one it is handed, if missing), the
    # bundles' rules.yaml, and the connector secrets given as context. Never writes S3.
    "chalicelib.handlers.relay.handler": _merge(
        _logs("RelayWorkerLogs"),
        XRAY,
        _on(
            "Relay",
            {
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueUrl",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            },
        ),
        _on("Jobs", {*JOBS, "dynamodb:DeleteItem"}),
        _on("Events", {"dynamodb:PutItem", "dynamodb:Query"}),  # stores what ingest queued
        _on("media/templates/*", {"s3:GetObject"}),
        _on(f"secret:{synth.WEBHOOK_SECRETS_SECRET}", {"secretsmanager:GetSecretValue"}),
    ),
    # The API (and the Incoming S3 trigger, the same role): media in and out, jobs, pages and
    # deliveries, events in, the relay queue, ONE state machine, ONE render function, and its
    # secrets (the tracking key, the CloudFront key, the API keys).
    "api": _merge(
        _logs("ApiLogs"),
        XRAY,
        MEDIA_RW,
        _on("Jobs", {*JOBS, "dynamodb:DeleteItem"}),
        _on("Events", {"dynamodb:PutItem", "dynamodb:Query"}),
        # Erasure: a person's media and their versions, events, and the Scan finding them.
        _on(OBJECTS, {"s3:DeleteObject", "s3:DeleteObjectVersion"}),
        _on(BUCKET, {"s3:ListBucketVersions"}),
        _on("Jobs", {"dynamodb:Scan"}),
        _on("Events", {"dynamodb:DeleteItem"}),
        _on("Relay", {"sqs:SendMessage"}),
        # Lambda's on-failure destination of the Incoming S3 trigger's asynchronous invocations.
        _on("IncomingDeadLetters", {"sqs:SendMessage"}),
        # POST /templates checks voice lines' voices.
        _on("*", {"polly:DescribeVoices"}),
        # `reel failures` / GET /failures: the dead letters of both on-failure queues, read and
        # dropped on a retry, which invokes the failed function (Render or Incoming) again.
        _on("IncomingDeadLetters", {"sqs:ReceiveMessage", "sqs:DeleteMessage"}),
        _on("RenderDeadLetters", {"sqs:ReceiveMessage", "sqs:DeleteMessage"}),
        _on("Batch", {"states:StartExecution"}),
        {"lambda:InvokeFunction": {"Render", "Render:*", "Incoming"}},
        {
            "secretsmanager:GetSecretValue": {
                "TrackingSecret",
                f"secret:{synth.CDN_KEY_SECRET}",
                f"secret:{synth.API_KEYS_SECRET}",
            }
        },
    ),
}
#: The state machine's role: its functions, its Distributed Map, its ItemReader/ResultWriter.
BATCH_ROLE = _merge(
    {
        "lambda:InvokeFunction": {
            f"{fn}{suffix}"
            for fn in ("Plan", "Render", "Finalize", "RecordFailure")
            for suffix in ("", ":*")
        }
    },
    _on("stateMachine:reel-dev-batch", {"states:StartExecution"}),
    _on("execution:reel-dev-batch/*", {"states:DescribeExecution", "states:StopExecution"}),
    _on(OBJECTS, {"s3:GetObject"}),
    _on(
        "media/sfn-results/*",
        {"s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"},
    ),
    {a: {"*"} for a in STAR_ACTIONS},
)

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "{region}", "AWS::AccountId": "{account}"}


def _text(value: Any, names: dict[str, str]) -> str:
    """A CloudFormation string expression, its tokens named."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_text(p, names) for p in parts)
    if "Ref" in value:
        return PSEUDO.get(value["Ref"]) or names[value["Ref"]]
    if "Fn::GetAtt" in value:
        return names[value["Fn::GetAtt"][0]]
    raise AssertionError(f"unexpected expression {value}")


def label(resource: Any, names: dict[str, str]) -> str:
    """A statement's resource as EXPECTED names it."""
    text = _text(resource, names)
    bucket = "arn:aws:s3:::reel-dev-media-{account}-{region}"
    if text.startswith(bucket):
        return BUCKET + text.removeprefix(bucket)
    for prefix in (
        "arn:aws:secretsmanager:{region}:{account}:",
        "arn:aws:states:{region}:{account}:",
    ):
        if text.startswith(prefix):
            return text.removeprefix(prefix).removesuffix("-??????")
    return text


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) of every identity policy."""
    found = []
    for rid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Policy":
            for role in props["Roles"]:
                found += [(role["Ref"], s) for s in props["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role":
            assert not props.get("Policies"), f"{rid}: inline policies (keep them in one place)"
            assert not props.get("ManagedPolicyArns"), f"{rid}: managed policies grant too much"
    return found


def grants(template: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """role logical id → action → resource labels."""
    names = synth.names(template)
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for role, s in _statements(template):
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s, s
        assert "Condition" not in s, s  # not needed by any of ours: a condition would hide scope
        for action in _listed(s["Action"]):
            out[role][action] |= {label(r, names) for r in _listed(s["Resource"])}
    return {role: dict(actions) for role, actions in out.items()}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synth.template_json()


def _roles_of_functions(template: dict[str, Any]) -> dict[str, str]:
    """handler (or "api" for the Chalice functions) → its role's logical id."""
    found: dict[str, str] = {}
    for rid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Function" and "ImageConfig" in props:
            found[props["ImageConfig"]["Command"][0]] = props["Role"]["Fn::GetAtt"][0]
        if res["Type"] == "AWS::Serverless::Function":
            role = props["Role"]["Fn::GetAtt"][0]
            assert found.setdefault("api", role) == role, f"{rid}: another role than the API's"
    return found


def test_each_function_role_may_do_what_its_handler_does_and_nothing_else(
    template: dict[str, Any],
) -> None:
    roles = _roles_of_functions(template)
    assert set(roles) == set(EXPECTED)
    assert len(set(roles.values())) == len(roles), "one role per kind of function"
    allowed = grants(template)
    for handler, role in roles.items():
        assert allowed[role] == EXPECTED[handler], handler


def test_the_state_machine_role_runs_its_map_and_nothing_else(template: dict[str, Any]) -> None:
    (machine,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    assert grants(template)[machine["RoleArn"]["Fn::GetAtt"][0]] == BATCH_ROLE


def test_no_action_wildcards_and_no_star_resources_beyond_xray_logs_and_speech(
    template: dict[str, Any],
) -> None:
    statements = _statements(template)
    assert len(statements) > 20
    for role, s in statements:
        actions, resources = _listed(s["Action"]), _listed(s["Resource"])
        for action in actions:
            assert "*" not in action or action in ACTION_WILDCARDS, (role, action)
            assert not action.endswith(":*"), (role, action)
        if "*" in resources:
            assert set(actions) <= STAR_ACTIONS | SPEECH_STAR_ACTIONS, (role, actions)


def test_the_roles_reach_secrets_by_reference_only(template: dict[str, Any]) -> None:
    from chalicelib.settings import SECRETS_MANAGER_PREFIX
    from infra.functions import SECRET_REFERENCE

    # The stack's references are what the settings resolve
    assert SECRET_REFERENCE == SECRETS_MANAGER_PREFIX
    text = json.dumps(template)
    assert "{{resolve:" not in text  # no value resolved into the functions' configuration
    # Who may read which secret: the API its three, the relay the webhook's, nobody else
    readers = {
        role: actions["secretsmanager:GetSecretValue"]
        for role, actions in grants(template).items()
        if "secretsmanager:GetSecretValue" in actions
    }
    names = synth.names(template)
    assert {names[role] for role in readers} == {"ApiRole", "RelayRole"}
    assert all(
        a.startswith("secretsmanager:GetSecretValue")
        for actions in grants(template).values()
        for a in actions
        if a.startswith("secretsmanager:")
    )


def test_the_expectations_are_not_vacuous() -> None:
    # A grant broader than expected must show: one more action, or "*" for a resource.
    template = synth.template_json()
    relay_role = synth.logical_ids(template)["RelayRole"]
    (policy,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": relay_role}]
    ]
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}
    )
    roles = _roles_of_functions(template)
    relay = grants(template)[roles["chalicelib.handlers.relay.handler"]]
    assert relay != EXPECTED["chalicelib.handlers.relay.handler"]
    assert relay["s3:PutObject"] == {"*"}
