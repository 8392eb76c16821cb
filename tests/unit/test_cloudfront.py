"""CloudFront signed media URLs: a canned policy that expires, signed with the key group's key
(verified here with the public key, as CloudFront does)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.adapters.cloudfront import CloudFrontUrls
from chalicelib.adapters.s3 import S3BlobStore


def _unsafe_b64(text: str) -> bytes:
    # CloudFront's URL-safe base64: '+' → '-', '=' → '_', '/' → '~'
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_signed_url_expires_and_verifies(key: rsa.RSAPrivateKey) -> None:
    urls = CloudFrontUrls("d111.cloudfront.net", "K2JCJMDEHXQW5F", pem(key), expiry=600)
    urls.clock = lambda: 1_800_000_000.4
    url = urls("videos/abc123.mp4")
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == (
        "https",
        "d111.cloudfront.net",
        "/videos/abc123.mp4",
    )
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert query["Expires"] == "1800000600"
    assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    # The canned policy CloudFront rebuilds from the URL and the expiry, verified as it does
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Resource": "https://d111.cloudfront.net/videos/abc123.mp4",
                    "Condition": {"DateLessThan": {"AWS:EpochTime": 1800000600}},
                }
            ]
        },
        separators=(",", ":"),
    ).encode()
    public = key.public_key()
    public.verify(_unsafe_b64(query["Signature"]), policy, padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(InvalidSignature):  # another resource is not covered
        public.verify(
            _unsafe_b64(query["Signature"]),
            policy.replace(b"abc123", b"xyz789"),
            padding.PKCS1v15(),
            hashes.SHA1(),
        )


def test_the_s3_store_uses_the_signer() -> None:
    store = S3BlobStore(None, "bucket", prefix="p/", signer=lambda k: f"signed:{k}")  # type: ignore[arg-type]
    assert store.url("videos/a.mp4") == "signed:p/videos/a.mp4"
    with pytest.raises(ValueError):
        store.url("../etc/passwd")


def test_only_rsa_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    text = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="RSA"):
        CloudFrontUrls("d.cloudfront.net", "K", text)
