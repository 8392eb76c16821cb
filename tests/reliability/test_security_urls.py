"""Signed media URLs expire: S3 presigned URLs, CloudFront signed URLs (the AWS backend) and the
local backend's `/files` URLs, each checked the way its server checks it."""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import json
import mimetypes
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from chalice.test import Client
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto import mock_aws

from chalicelib import bootstrap
from chalicelib import settings as settings_module
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.adapters.s3 import S3BlobStore

LOCAL = "http://127.0.0.1:8000"  # the local backend's default public URL
REGION = "us-east-1"
SECRET_ACCESS_KEY = "testing"  # tests/conftest.py's fake credentials sign the URLs


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(_query(url) | params)))


# ── S3 presigned URLs: SigV4 query authentication ────────────────────────────────────────


def s3_accepts(url: str, secret_access_key: str, now: float) -> bool:
    """What S3 decides for a presigned GET (SigV4, UNSIGNED-PAYLOAD): the signature over the
    canonical request, expiry included, must match; and X-Amz-Date + X-Amz-Expires > now.
    (moto serves presigned URLs without checking either: this is the check, from the spec.)"""
    parts = urlsplit(url)
    params = _query(url)
    given = params.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    assert params["X-Amz-SignedHeaders"] == "host"
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    _, day, region, service, terminal = params["X-Amz-Credential"].split("/")
    scope = f"{day}/{region}/{service}/{terminal}"
    to_sign = "\n".join(
        [
            params["X-Amz-Algorithm"],
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (day, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return False
    signed_at = calendar.timegm(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    return now < signed_at + int(params["X-Amz-Expires"])


@pytest.fixture
def s3_store() -> S3BlobStore:
    # Presigning is local: no request is sent (the client of bootstrap.py's configuration).
    client = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    return S3BlobStore(client, "reel-test-media", url_expiry=300)


def _signed_at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    """botocore's signing clock, set to `when`."""
    moment = dt.datetime.fromtimestamp(int(when), tz=dt.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: moment)


def test_s3_presigned_urls_carry_the_expiry_and_are_refused_after_it(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a URL signed at t0 (botocore's clock pinned)
    t0 = 1_800_000_000
    _signed_at(monkeypatch, t0)
    url = s3_store.url("videos/a b.mp4")
    params = _query(url)
    assert params["X-Amz-Expires"] == "300"  # the store's url_expiry
    assert params["X-Amz-Date"] == "20270115T080000Z"
    # THEN S3's check accepts it until t0 + 300 and refuses it from then on
    assert s3_accepts(url, SECRET_ACCESS_KEY, t0)
    assert s3_accepts(url, SECRET_ACCESS_KEY, t0 + 299)
    assert not s3_accepts(url, SECRET_ACCESS_KEY, t0 + 300)
    # AND the expiry is signed: a longer one, or another key, breaks the signature
    assert not s3_accepts(_with(url, **{"X-Amz-Expires": "604800"}), SECRET_ACCESS_KEY, t0 + 1)
    other = urlsplit(url)._replace(path="/videos/other.mp4").geturl()
    assert not s3_accepts(other, SECRET_ACCESS_KEY, t0 + 1)
    assert not s3_accepts(url, "another-secret-key", t0 + 1)


def test_an_s3_url_made_with_a_clock_in_the_past_is_refused(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    _signed_at(monkeypatch, now - 2 * s3_store.url_expiry)
    assert not s3_accepts(s3_store.url("videos/a.mp4"), SECRET_ACCESS_KEY, now)
    _signed_at(monkeypatch, now)
    assert s3_accepts(s3_store.url("videos/a.mp4"), SECRET_ACCESS_KEY, now)


def test_the_aws_backend_presigns_with_the_settings_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REEL_BACKEND", "aws")
    monkeypatch.setenv("REEL_REGION", REGION)
    monkeypatch.setenv("REEL_URL_EXPIRY", "120")
    bootstrap.reset()
    url = bootstrap.backends().blobs.url("videos/a.mp4")
    assert _query(url)["X-Amz-Expires"] == "120"
    assert s3_accepts(url, SECRET_ACCESS_KEY, time.time())


# ── CloudFront signed URLs: a canned policy, RSA-SHA1 ─────────────────────────────────────


def _cloudfront_b64decode(text: str) -> bytes:
    # CloudFront's URL-safe base64: '+' → '-', '=' → '_', '/' → '~'
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def cloudfront_accepts(url: str, public_key: rsa.RSAPublicKey, now: float) -> bool:
    """What CloudFront decides for a canned-policy URL: the policy it rebuilds from the URL and
    `Expires` must verify with the key group's public key, and `Expires` must be after now."""
    parts = urlsplit(url)
    params = _query(url)
    resource = urlunsplit(parts._replace(query=""))
    expires = int(params["Expires"])
    policy = {
        "Statement": [
            {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}
        ]
    }
    message = json.dumps(policy, separators=(",", ":")).encode()
    signature = _cloudfront_b64decode(params["Signature"])
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return now < expires


@pytest.fixture
def cloudfront_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[rsa.RSAPublicKey]:
    """The AWS backend signing CloudFront URLs (expiry 600 s), its private key read from an SSM
    SecureString parameter at start; yields the public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings_module._fetch.cache_clear()
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/reel/test/cdn-key", Value=pem, Type="SecureString")
        for name, value in {
            "REEL_BACKEND": "aws",
            "REEL_REGION": REGION,
            "REEL_URL_EXPIRY": "600",
            "REEL_CDN_DOMAIN": "d111.cloudfront.net",
            "REEL_CDN_KEY_ID": "K2JCJMDEHXQW5F",
            "REEL_CDN_PRIVATE_KEY": "ssm:/reel/test/cdn-key",
        }.items():
            monkeypatch.setenv(name, value)
        bootstrap.reset()
        yield key.public_key()
        bootstrap.reset()
    settings_module._fetch.cache_clear()


def test_cloudfront_urls_expire_after_the_settings_expiry(
    cloudfront_backend: rsa.RSAPublicKey,
) -> None:
    # GIVEN a media URL of the AWS backend
    before = int(time.time())
    url = bootstrap.backends().blobs.url("videos/abc123.mp4")
    after = int(time.time())
    params = _query(url)
    assert url.startswith("https://d111.cloudfront.net/videos/abc123.mp4?")
    assert params["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    # THEN its policy expires url_expiry (600 s) after it was made
    expires = int(params["Expires"])
    assert before + 600 <= expires <= after + 600
    # AND CloudFront would serve it until then, and not after
    assert cloudfront_accepts(url, cloudfront_backend, time.time())
    assert not cloudfront_accepts(url, cloudfront_backend, expires)
    # AND a later Expires, another object or another key pair's signature is refused
    assert not cloudfront_accepts(_with(url, Expires=str(expires + 86400)), cloudfront_backend, 0)
    other = urlsplit(url)._replace(path="/videos/other.mp4").geturl()
    assert not cloudfront_accepts(other, cloudfront_backend, 0)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert not cloudfront_accepts(url, stranger, 0)


def test_a_cloudfront_url_made_with_a_clock_in_the_past_is_refused(
    cloudfront_backend: rsa.RSAPublicKey,
) -> None:
    blobs = bootstrap.backends().blobs
    assert isinstance(blobs, S3BlobStore)
    signer: Any = blobs.signer
    signer.clock = lambda: time.time() - 1200  # two expiries ago
    assert not cloudfront_accepts(blobs.url("videos/a.mp4"), cloudfront_backend, time.time())


# ── the local backend: /files URLs signed with the tracking secret ────────────────────────


def _store() -> LocalBlobStore:
    blobs = bootstrap.backends().blobs
    assert isinstance(blobs, LocalBlobStore)
    return blobs


def _get(client: Client, url: str) -> Any:
    assert url.startswith(LOCAL + "/files/"), url
    # A binary answer needs a matching Accept header (API Gateway's rule, which Chalice keeps)
    kind = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
    return client.http.get(url.removeprefix(LOCAL), headers={"accept": kind})


def _error(response: Any) -> dict[str, str]:
    error: dict[str, str] = json.loads(response.body)["error"]
    return error


MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(64)


def test_local_media_urls_are_signed_and_served(local_app: Client) -> None:
    # GIVEN a video in the local store and the URL the API hands out for it
    store = _store()
    store.put_bytes("videos/v1.mp4", MP4)
    url = store.url("videos/v1.mp4")
    params = _query(url)
    assert set(params) == {"expires", "sig"}
    now = int(time.time())
    assert now + store.url_expiry - 5 <= int(params["expires"]) <= now + store.url_expiry
    # WHEN it is fetched THEN the file comes, and no cache may keep it past the expiry
    response = _get(local_app, url)
    assert response.status_code == 200
    assert response.body == MP4
    assert response.headers["Content-Type"] == "video/mp4"
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= store.url_expiry


def test_local_media_urls_live_url_expiry_seconds(
    campaign: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REEL_URL_EXPIRY", "77")
    bootstrap.reset()
    store = _store()
    now = int(time.time())
    assert now + 77 <= int(_query(store.url("posters/p.jpg"))["expires"]) <= int(time.time()) + 77


def test_a_local_url_made_with_a_clock_in_the_past_is_refused(local_app: Client) -> None:
    store = _store()
    store.put_bytes("videos/v2.mp4", MP4)
    # GIVEN a URL the server signed, two expiries ago
    past = LocalBlobStore(
        store.root,
        base_url=store.base_url,
        secret=store.secret,
        url_expiry=store.url_expiry,
        clock=lambda: time.time() - 2 * store.url_expiry,
    )
    # THEN it is refused: 403, the error naming the expiry
    response = _get(local_app, past.url("videos/v2.mp4"))
    assert response.status_code == 403
    assert _error(response) | {"message": ""} == {
        "code": "forbidden",
        "message": "",
        "field": "expires",
    }
    assert "expired" in _error(response)["message"]


def test_forged_local_urls_are_refused(local_app: Client) -> None:
    store = _store()
    store.put_bytes("videos/v3.mp4", MP4)
    store.put_bytes("posters/p3.jpg", b"\xff\xd8\xff")
    url = store.url("videos/v3.mp4")
    params = _query(url)
    sig = params["sig"]
    later = str(int(params["expires"]) + 86400)
    another_secret = LocalBlobStore(store.root, base_url=store.base_url, secret="not-the-secret")
    forged = {
        "no signature": urlsplit(url)._replace(query="").geturl(),
        "no expiry": _with(url, expires=""),
        "a later expiry": _with(url, expires=later),
        "a changed signature": _with(url, sig=("A" if sig[0] != "A" else "B") + sig[1:]),
        "a truncated signature": _with(url, sig=sig[:-2]),
        "another file's signature": _with(
            store.url("posters/p3.jpg").replace("/posters/p3.jpg", "/videos/v3.mp4")
        ),
        "another secret": another_secret.url("videos/v3.mp4"),
        "a signed non-number": _with(url, expires="1e99"),
    }
    for what, forged_url in forged.items():
        response = _get(local_app, forged_url)
        assert response.status_code == 403, what
        assert _error(response)["code"] == "forbidden", what
    # The genuine URL still works (the refusals above changed nothing)
    assert _get(local_app, url).status_code == 200
