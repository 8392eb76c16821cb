"""Every environment variable Reel reads, in one pydantic-settings object."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.adapters.addresses import parse_networks

#: The settings that hold secrets. Each may be given as a reference, resolved once per process
#: when the settings are read: `ssm:<parameter name or ARN>` (SSM Parameter Store, SecureString
#: decrypted) or `secretsmanager:<secret name or ARN>` (what the CDK stack passes, infra/).
SECRET_FIELDS = (
    "api_keys",
    "cdn_private_key",
    "tracking_secret",
    "webhook_secrets",
    "hubspot_token",
    "salesforce_token",
    "hubspot_client_secret",
    "salesforce_hook_secret",
    "inbound_webhook_secrets",
)
SSM_PREFIX = "ssm:"
SECRETS_MANAGER_PREFIX = "secretsmanager:"


class SecretReferenceError(RuntimeError):
    """A secret setting names a parameter or secret that cannot be read: a deployment error,
    raised as is (not as a ValidationError, whose text would echo every setting's input)."""


def _region_of(reference: str, default: str | None) -> str | None:
    """An ARN's region (the parameter or secret lives there), else the settings' region."""
    parts = reference.split(":")
    return parts[3] if reference.startswith("arn:") and len(parts) > 4 and parts[3] else default


@lru_cache(maxsize=64)
def _fetch(service: str, reference: str, region: str | None) -> str:
    """The value behind a reference, read once per process (errors are not cached)."""
    import boto3

    region = _region_of(reference, region)
    found: Any
    if service == "ssm":
        ssm = boto3.client("ssm", region_name=region)
        found = ssm.get_parameter(Name=reference, WithDecryption=True)
        return str(found["Parameter"]["Value"])
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    found = secretsmanager.get_secret_value(SecretId=reference)
    if "SecretString" not in found:
        raise SecretReferenceError("the secret holds binary data, not a string")
    return str(found["SecretString"])


def resolve_secret(value: str, setting: str, region: str | None = None) -> str:
    """`value` itself, or what it references (`ssm:…`, `secretsmanager:…`); the error names
    the setting and the reference."""
    from botocore.exceptions import BotoCoreError, ClientError

    for prefix, service in ((SSM_PREFIX, "ssm"), (SECRETS_MANAGER_PREFIX, "secretsmanager")):
        if value.startswith(prefix):
            reference = value.removeprefix(prefix).strip()
            if not reference:
                raise SecretReferenceError(f"{setting}: {prefix} names no parameter")
            try:
                return _fetch(service, reference, region)
            except (BotoCoreError, ClientError, SecretReferenceError) as exc:
                raise SecretReferenceError(
                    f"{setting}: cannot read {prefix}{reference}: {exc}"
                ) from None
    return value


class Settings(BaseSettings):
    """Reel's settings; each field is `REEL_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="REEL_", extra="ignore")

    ffmpeg: str | None = Field(
        default=None, description="Path of the ffmpeg binary; default: imageio-ffmpeg's build"
    )
    ffmpeg_version: str = Field(
        default="",
        description="the pinned ffmpeg's version, where no ffmpeg runs (the API's Lambda)",
    )
    render_timeout: float = Field(default=600.0, gt=0, description="Seconds per ffmpeg run")
    work_dir: Path | None = Field(default=None, description="Scratch directory for renders")
    x264_preset: str = Field(default="veryfast", description="libx264 preset of the profile")
    x264_crf: int = Field(default=20, ge=0, le=51)
    ffmpeg_threads: int = Field(default=0, ge=0, description="0 lets ffmpeg choose")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "reel",
        description="Local segment cache (the BlobStore of rendered segments)",
    )
    cache_max_bytes: int = Field(
        default=10_000_000_000,
        ge=1,
        description="cap on the local segment cache and the fetched assets together (and, "
        "on the render Lambda, their copies in /tmp): least recently used evicted first, "
        "never a file a running render holds",
    )
    # Asset URLs in data (an avatar, a logo): fetched by adapters/fetcher.py, the one guarded door.
    fetch_allow_http: bool = Field(
        default=False, description="also fetch plain http:// asset URLs (default: https only)"
    )
    fetch_allow_networks: str = Field(
        default="",
        description="comma-separated CIDRs an asset URL may reach although not public "
        "(an internal asset server; tests' 127.0.0.1). Cloud metadata addresses never",
    )
    fetch_max_bytes: int = Field(
        default=25_000_000, ge=1, description="largest asset a URL may deliver, in bytes"
    )
    fetch_connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds to resolve and connect to an asset's host"
    )
    fetch_read_timeout: float = Field(
        default=10.0, gt=0, description="seconds an asset's server may stay silent"
    )
    fetch_deadline: float = Field(
        default=20.0,
        gt=0,
        description="seconds one asset's whole download may take (an API request bringing "
        "a URL waits for it: kept below API Gateway's 29 s)",
    )
    fetch_ca_bundle: Path | None = Field(
        default=None,
        description="PEM bundle of the CAs trusted for asset URLs (a private CA); "
        "default: certifi's public roots",
    )

    # ── where things live: the embedded default, or AWS ──────────────────────────────────
    backend: Literal["local", "aws"] = Field(
        default="local", description="local: a directory, SQLite and a process pool; aws"
    )
    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "share" / "reel",
        description="local backend: blobs under data_dir/blobs, jobs in data_dir/reel.db",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="local backend: the base URL `reel serve` answers on (for media URLs)",
    )
    workers: int = Field(default=1, ge=1, description="local backend: render processes")
    api_keys: str = Field(
        default="", description="comma-separated API keys accepted in the x-api-key header"
    )
    studio_dir: Path | None = Field(
        default=None, description="Reel Studio: the campaign folder it edits (`reel studio DIR`)"
    )
    studio_data: Path | None = Field(
        default=None, description="Reel Studio: the recipients' file (default: the campaign's)"
    )
    # AWS (REEL_BACKEND=aws): names of the resources infra/ creates.
    region: str | None = Field(default=None, description="AWS region; default: boto3's")
    bucket: str = Field(default="reel-media", description="S3 bucket of every blob")
    table: str = Field(default="reel-jobs", description="DynamoDB table of templates and jobs")
    idempotency_table: str = Field(
        default="reel-idempotency", description="DynamoDB table of Powertools idempotency"
    )
    state_machine_arn: str = Field(default="", description="the batch state machine")
    render_function: str = Field(default="reel-render", description="the render Lambda")
    url_expiry: int = Field(default=3600, gt=0, description="seconds a signed media URL lives")
    cdn_domain: str = Field(default="", description="CloudFront domain serving the bucket")
    cdn_key_id: str = Field(default="", description="CloudFront public key id (key group)")
    cdn_private_key: str = Field(
        default="", description="PEM of the key group's private key: signs media URLs"
    )
    max_concurrency: int = Field(
        default=200, ge=1, description="Distributed Map: render Lambdas at once"
    )
    render_batch_size: int = Field(
        # Chosen with `make cost`: fewer invocations, cold starts and transitions, and each
        # invocation's warm /tmp cache serves ten; a batch of ten stays far from a child's limits
        default=10,
        ge=1,
        le=100,
        description="Distributed Map: recipients each render invocation takes (ItemBatcher)",
    )
    tolerated_failure_percentage: float = Field(
        default=100, ge=0, le=100, description="Distributed Map: failed items tolerated"
    )
    max_inline_records: int = Field(default=1000, ge=1, description="POST /batches inline cap")
    # Streams on AWS (the render Lambda makes missing groups; the API never waits for it long).
    stream_lease: float = Field(
        default=15.0,
        gt=0,
        description="seconds a stream group's render claim (and its dispatch) holds: a "
        "crashed or frozen render is taken over after it",
    )
    stream_wait: float = Field(
        default=2.0,
        ge=0,
        le=20,
        description="seconds a chunk request waits for a missing chunk before a 503 "
        "with Retry-After (AWS)",
    )
    # Delivery and tracking.
    tracking_secret: str = Field(
        default="",
        description="HMAC key of page tokens; local default: generated into data_dir/tracking.key",
    )
    events_table: str = Field(default="reel-events", description="DynamoDB table of events")
    event_ttl_days: int | None = Field(
        default=None,
        ge=1,
        description="DynamoDB: events expire (TTL `expires_at`) this many days after they were "
        "received; the stack sets it from the campaigns' shortest `retention.events`",
    )
    # Behaviour exchange: the connectors the relay delivers to (each off until configured).
    webhook_url: str = Field(default="", description="the generic webhook's endpoint")
    webhook_secrets: str = Field(
        default="", description="comma-separated whsec_ secrets (several during a rotation)"
    )
    hubspot_token: str = Field(default="", description="HubSpot private app token")
    hubspot_base_url: str = Field(default="https://api.hubapi.com")
    salesforce_instance_url: str = Field(
        default="", description="e.g. https://acme.my.salesforce.com"
    )
    salesforce_token: str = Field(default="", description="Salesforce session id / access token")
    relay_max_attempts: int = Field(default=8, ge=1, description="attempts before dead-letter")
    relay_queue_url: str = Field(default="", description="SQS queue of the behaviour relay")
    # On-failure destinations of asynchronous invocations (`reel failures`, GET /failures).
    render_dead_letter_queue_url: str = Field(
        default="", description="SQS queue of the render function's failed async invocations"
    )
    incoming_dead_letter_queue_url: str = Field(
        default="", description="SQS queue of the S3 upload trigger's failed invocations"
    )
    # Inbound hooks (POST /hooks/…): a hook whose secret is empty is off (answers 404).
    hubspot_client_secret: str = Field(
        default="", description="HubSpot app client secret: checks X-HubSpot-Signature-v3"
    )
    salesforce_hook_secret: str = Field(
        default="", description="shared secret of the Salesforce hook: checks X-Reel-Signature"
    )
    inbound_webhook_secrets: str = Field(
        default="",
        description="comma-separated whsec_ secrets of the Standard Webhooks hook (rotation)",
    )

    # Voice-over (`voice` audio layers): the speech engine, chosen here.
    speech_engine: Literal["", "espeak", "polly", "piper"] = Field(
        default="",
        description="espeak (local, bundled), polly (AWS) or piper (a .onnx voice model); "
        "default: polly on the AWS backend, else espeak (piper when REEL_PIPER_MODEL is set)",
    )
    piper_model: Path | None = Field(default=None, description="Piper: the .onnx voice model")
    polly_engine: Literal["neural", "standard", "generative", "long-form"] = Field(
        default="neural", description="Polly: the engine its voices are taken from"
    )
    speech_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds one voice line may take to speak (espeak-ng, Piper; Polly's read "
        "timeout): a line that takes longer fails its recipient with voice_failed",
    )

    @model_validator(mode="after")
    def _resolve_secrets(self) -> Settings:
        """Every secret setting given as a reference gets the value it references."""
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            resolved = resolve_secret(value, f"REEL_{name.upper()}", self.region)
            if resolved is not value:
                setattr(self, name, resolved)
        return self

    @field_validator("fetch_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError names the entry that is not a CIDR
        return value

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
