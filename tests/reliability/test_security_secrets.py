"""Secrets come only from settings — the environment, or SSM / Secrets Manager references the
settings resolve — and none is committed to the repository."""

from __future__ import annotations

import collections
import hashlib
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import settings as settings_module
from chalicelib.settings import SECRET_FIELDS, SecretReferenceError, Settings

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

# ── secret settings: values, or references resolved once ──────────────────────────────────


@pytest.fixture
def aws_secrets() -> Iterator[tuple[Any, Any]]:
    """moto's SSM and Secrets Manager; the process's cache of resolved references emptied."""
    settings_module._fetch.cache_clear()
    with mock_aws():
        yield (
            boto3.client("ssm", region_name=REGION),
            boto3.client("secretsmanager", region_name=REGION),
        )
    settings_module._fetch.cache_clear()


def test_every_secret_setting_may_be_an_ssm_reference(
    aws_secrets: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm, _ = aws_secrets
    # GIVEN each secret setting as a SecureString parameter, the environment naming it
    for name in SECRET_FIELDS:
        ssm.put_parameter(Name=f"/reel/test/{name}", Value=f"{name}-value", Type="SecureString")
        monkeypatch.setenv(f"REEL_{name.upper()}", f"ssm:/reel/test/{name}")
    # WHEN the settings are read THEN each holds its parameter's (decrypted) value
    first = Settings()
    assert {n: getattr(first, n) for n in SECRET_FIELDS} == {n: f"{n}-value" for n in SECRET_FIELDS}
    # AND they were read once: gone from SSM, the process still has them
    for name in SECRET_FIELDS:
        ssm.delete_parameter(Name=f"/reel/test/{name}")
    again = Settings()
    assert {n: getattr(again, n) for n in SECRET_FIELDS} == {n: f"{n}-value" for n in SECRET_FIELDS}
    assert first.api_key_list == ["api_keys-value"]


def test_secrets_manager_references_and_arns(
    aws_secrets: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm, secretsmanager = aws_secrets
    # GIVEN the tracking secret in Secrets Manager (what the CDK stack passes: its ARN), the
    # webhook secrets by name, and an SSM parameter by its ARN
    arn = secretsmanager.create_secret(Name="reel/test/tracking", SecretString="t-value")["ARN"]
    secretsmanager.create_secret(Name="reel/test/webhooks", SecretString="whsec_a,whsec_b")
    ssm.put_parameter(Name="/reel/test/hubspot", Value="pat-value", Type="SecureString")
    parameter_arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/reel/test/hubspot"
    monkeypatch.setenv("REEL_TRACKING_SECRET", f"secretsmanager:{arn}")
    monkeypatch.setenv("REEL_WEBHOOK_SECRETS", "secretsmanager:reel/test/webhooks")
    monkeypatch.setenv("REEL_HUBSPOT_TOKEN", f"ssm:{parameter_arn}")
    # A plain value stays as it is
    monkeypatch.setenv("REEL_SALESFORCE_TOKEN", "plain-value")
    s = Settings()
    assert (s.tracking_secret, s.webhook_secrets) == ("t-value", "whsec_a,whsec_b")
    assert (s.hubspot_token, s.salesforce_token) == ("pat-value", "plain-value")


def test_a_reference_that_cannot_be_read_names_the_setting(
    aws_secrets: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a tracking secret naming a parameter that does not exist, and a plain API key
    monkeypatch.setenv("REEL_API_KEYS", "plain-api-key-0123")
    monkeypatch.setenv("REEL_TRACKING_SECRET", "ssm:/reel/prod/missing")
    # WHEN the settings are read THEN the error names the setting, the reference and why
    with pytest.raises(SecretReferenceError) as raised:
        Settings()
    message = str(raised.value)
    assert message.startswith("REEL_TRACKING_SECRET: cannot read ssm:/reel/prod/missing")
    assert "ParameterNotFound" in message
    # AND it echoes no other setting (a pydantic ValidationError would print every input)
    assert "plain-api-key" not in message
    # A reference naming nothing, and a secret that holds bytes, are errors too
    monkeypatch.setenv("REEL_TRACKING_SECRET", "ssm:  ")
    with pytest.raises(SecretReferenceError, match="REEL_TRACKING_SECRET: ssm: names no"):
        Settings()
    _, secretsmanager = aws_secrets
    secretsmanager.create_secret(Name="reel/test/binary", SecretBinary=b"\x00\x01")
    monkeypatch.setenv("REEL_TRACKING_SECRET", "secretsmanager:reel/test/binary")
    with pytest.raises(SecretReferenceError, match="binary data"):
        Settings()


def test_plain_values_touch_no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_module._fetch.cache_clear()
    for name in SECRET_FIELDS:
        monkeypatch.setenv(f"REEL_{name.upper()}", f"{name}-plain")
    s = Settings()
    assert all(getattr(s, n) == f"{n}-plain" for n in SECRET_FIELDS)
    assert settings_module._fetch.cache_info().currsize == 0


#: Settings whose name says secret/token/key/password but which are not secrets, and why.
NOT_SECRET_SETTINGS = {
    "cdn_key_id": "the CloudFront public key's id: public, it is in every signed URL",
}


def test_every_secret_looking_setting_goes_through_the_resolver() -> None:
    words = {"secret", "secrets", "token", "tokens", "key", "keys", "password"}
    looks_secret = {name for name in Settings.model_fields if words.intersection(name.split("_"))}
    assert looks_secret - set(NOT_SECRET_SETTINGS) == set(SECRET_FIELDS)
    assert set(NOT_SECRET_SETTINGS) <= set(Settings.model_fields)
    for name in SECRET_FIELDS:  # every secret setting is a string with an empty default
        assert Settings.model_fields[name].annotation in (str, "str"), name
        assert Settings.model_fields[name].default == "", name


# ── nothing secret in the repository ──────────────────────────────────────────────────────

#: Credential shapes of the services Reel talks to, and of keys in general.
SHAPES = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "PEM private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "Slack token": re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/\w+"),
    "HubSpot private app token": re.compile(
        r"\bpat-(?:na|eu|ap)[0-9]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    ),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{40,})"),
    "Standard Webhooks secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{20,}"),
    "Salesforce session id": re.compile(r"\b00D[0-9A-Za-z]{12,15}![0-9A-Za-z._]{20,}"),
}
#: A long, varied string literal assigned to a name that says it is a secret.
ASSIGNED = re.compile(
    r"""(?ix)\b([\w-]*(?:secret|token|passw(?:or)?d|api[_-]?key|private[_-]?key|access[_-]?key
    |session)[\w-]*)["']?\s*(?::=|=|:)\s*[bru]?["']([^"'\s]{16,})["']"""
)
MIN_ENTROPY = 3.5  # bits per character: words and identifiers stay below, random keys above
#: (file, sha256(value)[:16]) → why that committed value may be there (hashed: this list
#: must not commit them again). Only test fixtures: the fake services' credentials.
COMMITTED_TEST_SECRETS = {
    ("tests/fakes/crm.py", "96ad2ccd81462a76"): "whsec_MfKQ…: the Standard Webhooks spec's "
    "published example secret, accepted by the fake webhook receiver",
    ("tests/fakes/crm.py", "bcb99600df4cc48f"): "whsec_c2Vj…: base64 of "
    "'second-rotation-secret-24', the fake receiver's second key of a rotation",
    ("tests/fakes/crm.py", "264ce44e2ca0d2b9"): "pat-na1-00000000-1111-…: the fake HubSpot's "
    "token, a placeholder pattern",
    ("tests/fakes/crm.py", "801440dbb414ea40"): "00D0…FakeSessionIdForTests: the fake "
    "Salesforce's session id",
    ("tests/integration/test_connectors.py", "034dfab8c5c1a589"): "whsec_d3Jv…: base64 of "
    "'wrong-secret-not-configured', a key the fake receiver refuses",
    ("tests/reliability/test_api_fuzz.py", "fff65cbf445cd088"): "whsec_ZnV6…: base64 of "
    "'fuzz-webhook-secret', the fuzzed app's inbound webhook key",
}
#: A name or a path (a variable's, a field's, a secret's name in Secrets Manager): no secret.
_NAME = re.compile(r"[A-Z][A-Z0-9_]*|[a-z][a-z0-9_./-]*")
_DIGIT = re.compile(r"[0-9]")


def _entropy(text: str) -> float:
    counts = collections.Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def credential_strings(text: str) -> list[tuple[str, int, str]]:
    """(what, line, value) of each credential-looking string in `text`."""
    found = []
    for what, shape in SHAPES.items():
        found += [(what, text.count("\n", 0, m.start()) + 1, m[0]) for m in shape.finditer(text)]
    for m in ASSIGNED.finditer(text):
        value = m[2]
        if _NAME.fullmatch(value) or _entropy(value) < MIN_ENTROPY or not _DIGIT.search(value):
            continue  # a name, a path, words: keys are random, and random has digits
        found.append((f"string assigned to {m[1]}", text.count("\n", 0, m.start()) + 1, value))
    return found


def committed_secrets(path: str, text: str) -> list[tuple[str, str, int, str]]:
    """(path, what, line, value) of the credential-looking strings not allowed in `path`."""
    return [
        (path, what, line, value)
        for what, line, value in credential_strings(text)
        if (path, _digest(value)) not in COMMITTED_TEST_SECRETS
    ]


def repository_files() -> list[str]:
    """What git tracks, and the new files not ignored (what the next commit may add)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing tells tracked files from the rest")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({p for p in listed.split("\0") if p and (ROOT / p).is_file()})


def test_the_scan_sees_each_shape() -> None:
    # Samples made at run time, so that this file commits none of them.
    samples = {
        "AWS access key id": "AKIA" + "Q3EXAMPLE7ZKEYAB",
        "PEM private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "Slack token": "xoxb-" + "1234567890-abcdefABCDEF",
        "GitHub token": "ghp_" + "a1B2c3D4" * 5,
        "HubSpot private app token": "pat-na1-" + "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
        "Standard Webhooks secret": "whsec_" + "bm90IGEgcmVhbCBzZWNyZXQ=",
        "Salesforce session id": "00D" + "5g000004abcde!" + "AQ4AQPretendSessionToken01",
        "string assigned to client_secret": 'client_secret = "' + "q8Zr2LmX4vN7pT1wKc9D" + '"',
    }
    for what, sample in samples.items():
        found = committed_secrets("sample.py", f"x = 1\n{sample}\n")
        assert [(f[1], f[2]) for f in found] == [(what, 2)], (what, found)
    # Names, words and identifiers are not secrets
    for fine in ('token_header = "X-Reel-Signature-Value"', 'hubspot_token_secret: "REEL_TOKEN"'):
        assert committed_secrets("sample.py", fine) == []


def test_no_secret_is_committed() -> None:
    files = repository_files()
    assert "chalicelib/settings.py" in files and len(files) > 50
    env_files = [p for p in files if PurePosixPath(p).name.startswith(".env")]
    assert env_files == [], "an .env file holds secrets: keep it out of git (.gitignore)"
    found = []
    for path in files:
        data = (ROOT / path).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: media, fonts
        found += committed_secrets(path, data.decode("utf-8", errors="replace"))
    assert found == [], "\n".join(
        f"{p}:{line}: {what}: {value[:12]}…" for p, what, line, value in found
    )


def test_the_committed_test_secrets_allow_list_is_exact() -> None:
    # Each entry still matches a credential-looking string of its file (a stale entry would
    # hide nothing today, and anything tomorrow); only test fixtures may commit one.
    for (path, digest), reason in COMMITTED_TEST_SECRETS.items():
        assert path.startswith("tests/"), (path, reason)
        text = (ROOT / path).read_text(encoding="utf-8")
        digests = {_digest(value) for _, _, value in credential_strings(text)}
        assert digest in digests, f"stale entry {path} {digest}: {reason}"
