"""The Reel stack synthesized once per test process (tests/infra and tests/reliability share it)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

STACK = "reel-dev"
#: Secrets Manager secret names given as context (values are never context).
CDN_KEY_SECRET = "reel/dev/cloudfront-private-key"
API_KEYS_SECRET = "reel/dev/api-keys"
WEBHOOK_SECRETS_SECRET = "reel/dev/webhook-secrets"


def public_key_pem() -> str:
    """A throwaway key pair's PUBLIC half; the private one never leaves this function."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@lru_cache(maxsize=1)
def cdk_out() -> Path:
    """The cloud assembly of stage dev, with the webhook connector and every secret given."""
    from infra.app import build

    outdir = Path(tempfile.mkdtemp(prefix="reel-cdk-out-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    context = {
        "stage": "dev",
        "public_key": public_key_pem(),
        "cdn_private_key_secret": CDN_KEY_SECRET,
        "api_keys_secret": API_KEYS_SECRET,
        # The relay's connectors: the webhook configured, HubSpot and Salesforce left off.
        "webhook_url": "https://crm.example.com/hooks/reel",
        "webhook_secrets_secret": WEBHOOK_SECRETS_SECRET,
    }
    build(outdir, context=context).synth()
    return outdir


def template_json() -> dict[str, Any]:
    """The stack's CloudFormation template (a fresh copy each call)."""
    data: dict[str, Any] = json.loads((cdk_out() / f"{STACK}.template.json").read_text())
    return data


#: The image functions by the handler their image runs (the name `names` gives each).
FUNCTIONS = {
    "chalicelib.handlers.render.handler": "Render",
    "chalicelib.handlers.batch.plan": "Plan",
    "chalicelib.handlers.batch.finalize": "Finalize",
    "chalicelib.handlers.batch.record_failure": "RecordFailure",
    "chalicelib.handlers.relay.handler": "RelayWorker",
}
#: What the API's environment variables point at.
API_ENVIRONMENT = {
    "REEL_TABLE": "Jobs",
    "REEL_IDEMPOTENCY_TABLE": "Idempotency",
    "REEL_EVENTS_TABLE": "Events",
    "REEL_RELAY_QUEUE_URL": "Relay",
    "REEL_TRACKING_SECRET": "TrackingSecret",
    "REEL_STATE_MACHINE_ARN": "Batch",
}


def _target(value: Any) -> str:
    """The logical id a Ref, a GetAtt or a Join around one Ref (the secret reference) names."""
    if "Ref" in value:
        return str(value["Ref"])
    if "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    (ref,) = [p for p in value["Fn::Join"][1] if isinstance(p, dict)]
    return _target(ref)


def names(template: dict[str, Any]) -> dict[str, str]:
    """logical id → what the resource is to Reel (Jobs, Relay, RenderRole, ApiLogs…), found by
    how the template wires it (the handler a function runs, the API's environment, a function's
    role and log group), not by logical ids (test_logical_ids.py pins those)."""
    resources = template["Resources"]
    found: dict[str, str] = {}

    def function(rid: str, name: str, role: str, logs: str) -> None:
        props = resources[rid]["Properties"]
        found[rid] = name
        found[_target(props["Role"])] = role
        found[_target(props["LoggingConfig"]["LogGroup"])] = logs

    for rid, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Function" and "ImageConfig" in props:
            name = FUNCTIONS[props["ImageConfig"]["Command"][0]]
            role = "RelayRole" if name == "RelayWorker" else f"{name}Role"
            function(rid, name, role, f"{name}Logs")
        if res["Type"] == "AWS::StepFunctions::StateMachine":
            found[_target(props["RoleArn"])] = "BatchRole"
            (destination,) = props["LoggingConfiguration"]["Destinations"]
            found[_target(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])] = "BatchLogs"
    # Both Chalice functions have the API's role and log group.
    function("APIHandler", "APIHandler", "ApiRole", "ApiLogs")
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    for variable, name in API_ENVIRONMENT.items():
        found[_target(env[variable])] = name
    relay = resources[_inverse(found)["Relay"]]["Properties"]
    found[_target(relay["RedrivePolicy"]["deadLetterTargetArn"])] = "RelayDeadLetters"
    # The render function's on-failure destination of its asynchronous invocations.
    for res in resources.values():
        if res["Type"] == "AWS::Lambda::EventInvokeConfig":
            failure = res["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
            found[_target(failure)] = "RenderDeadLetters"
    # The S3 trigger (a Chalice function: its logical id is its name), and its on-failure
    # destination, declared on the function itself (SAM's EventInvokeConfig).
    found["Incoming"] = "Incoming"
    incoming = resources["Incoming"]["Properties"]["EventInvokeConfig"]
    found[_target(incoming["DestinationConfig"]["OnFailure"]["Destination"])] = (
        "IncomingDeadLetters"
    )
    return found


def _inverse(found: dict[str, str]) -> dict[str, str]:
    return {name: rid for rid, name in found.items()}


def logical_ids(template: dict[str, Any]) -> dict[str, str]:
    """What `names` gives, the other way round: Reel's name → logical id."""
    return _inverse(names(template))
