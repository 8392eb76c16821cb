"""CloudFront signed URLs (canned policy): the media URLs of the AWS backend expire."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from urllib.parse import quote

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CloudFrontUrls:
    """Signs `https://{domain}/{key}` with the key group's private key, valid `expiry` s."""

    def __init__(
        self,
        domain: str,
        key_id: str,
        private_key_pem: str,
        *,
        expiry: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a CloudFront key pair is RSA")
        # CloudFront's canned policies are signed with RSA-SHA1: its format, not our choice.
        self._signer = CloudFrontSigner(
            key_id, lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())
        )
        self.domain = domain.removeprefix("https://").rstrip("/")
        self.expiry = expiry
        self.clock = clock

    def __call__(self, object_key: str) -> str:
        expires = dt.datetime.fromtimestamp(int(self.clock()) + self.expiry, tz=dt.UTC)
        url = f"https://{self.domain}/{quote(object_key)}"
        return self._signer.generate_presigned_url(url, date_less_than=expires)
