"""Page tokens, the tracking signature, and the signed media URLs of the local backend.

A page's token is 192 random bits (URL-safe), never derived from the recipient: the URL says
nothing about who it is for. The page's script signs its events with `signed_token`: the token
plus an HMAC-SHA256 over the token, the recipient and the campaign, keyed by the tracking secret.
A local media URL carries `expires` (Unix seconds) and `sig`, an HMAC-SHA256 over the blob key
and that expiry with the same key (another message shape: neither signature passes for the other).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 24  # 192 bits


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _mac(secret: str, token: str, recipient_id: str, campaign_id: str) -> str:
    message = "\x1f".join((token, recipient_id, campaign_id)).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_token(secret: str, token: str, recipient_id: str, campaign_id: str) -> str:
    """What the page gives its script: `token.signature`."""
    return f"{token}.{_mac(secret, token, recipient_id, campaign_id)}"


def split(signed: str) -> tuple[str, str]:
    """(token, signature) of a signed token; ("", "") when it has no signature."""
    token, _, signature = signed.rpartition(".")
    return token, signature


def verify(secret: str, signed: str, recipient_id: str, campaign_id: str) -> bool:
    """True when `signed` was made for this recipient and campaign (constant-time compare)."""
    token, signature = split(signed)
    expected = _mac(secret, token, recipient_id, campaign_id)
    return bool(token) and hmac.compare_digest(signature.encode(), expected.encode())


_EXPIRES = re.compile(r"[0-9]{1,12}")


def media_signature(secret: str, key: str, expires: int) -> str:
    """The `sig` of a local media URL: valid for `key` until `expires` (Unix seconds)."""
    message = "\x1f".join(("media", key, str(expires))).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify_media(secret: str, key: str, expires: str, signature: str) -> bool:
    """True when `signature` was made by `media_signature` for this key and expiry (constant-time
    compare; whether the expiry has passed is the caller's question)."""
    if not _EXPIRES.fullmatch(expires):
        return False
    expected = media_signature(secret, key, int(expires))
    return hmac.compare_digest(signature.encode(), expected.encode())
