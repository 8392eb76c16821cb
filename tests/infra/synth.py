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
