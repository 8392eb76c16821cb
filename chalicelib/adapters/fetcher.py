"""The asset fetcher: media behind URLs in data, downloaded through one guarded door.

`HttpFetcher.fetch` downloads one https (http only when the policy allows it) URL into a
content-addressed local copy: the host is resolved once, every address it resolves to must be
public (no loopback, private, link-local, CGNAT, multicast, reserved or cloud-metadata
address, IPv4-mapped IPv6 included; `adapters/addresses.py`), and the connection goes to that
checked address (no second lookup, so DNS rebinding cannot switch it) with the URL's Host
header and TLS hostname; redirects are followed by hand, each hop checked the same way. The
body is capped in size, sniffed by its magic bytes for the kind of media expected, and bounded
in time (connect and read timeouts, an overall deadline). Every refusal is an AssetError
naming the variable and the reason. It implements the `AssetFetcher` port (chalicelib.ports).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from chalicelib.adapters.addresses import METADATA_HOSTS, IPAddress, IPNetwork, address_refusal
from chalicelib.errors import AssetError
from chalicelib.render.disk import DiskBudget
from chalicelib.render.sniff import SNIFF_BYTES, Kind, check_media, kind_error, sniff
from chalicelib.template.values import REMOTE_SCHEMES, check_url, url_scheme

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024

_ACCEPT = {
    "image": "image/png, image/jpeg, image/gif, image/webp",
    "video": "video/mp4, video/quicktime, video/webm, video/x-matroska",
    "audio": "audio/mp4, audio/mpeg, audio/wav, audio/ogg, audio/flac, audio/aac",
}


@dataclass(frozen=True)
class FetchPolicy:
    """What the fetcher allows, and where it keeps what it fetched (`REEL_FETCH_*`, read at
    the edge)."""

    store: Path
    allow_http: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 25_000_000
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 20.0
    ca_bundle: str | None = None
    max_redirects: int = MAX_REDIRECTS
    # The disk budget the copies count against (REEL_CACHE_MAX_BYTES): a copy is pinned for
    # the render's lease, and the least recently used are evicted (fetched again when needed).
    budget: DiskBudget | None = None


class HttpFetcher:
    """The `AssetFetcher` over urllib3: one guarded GET per hop, into `policy.store`."""

    def __init__(self, policy: FetchPolicy):
        self.policy = policy

    def fetch(self, url: str, kind: Kind, *, field: str) -> Path:
        """A local, content-addressed copy (`<sha256>.<ext>`) of the media at `url`, checked
        to be of `kind`; AssetError (naming `field`) says why it was refused."""
        path = _Fetch(url, kind, field, self.policy).run()
        check_media(path, kind, field=field, name=f"the {kind} at {_short(url)}")
        return path


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str  # path and query

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _short(url: str) -> str:
    return url if len(url) <= 100 else url[:97] + "…"


class _Fetch:
    """One fetch: the URL's hops, each checked, towards one local file."""

    def __init__(self, url: str, kind: Kind, field: str, policy: FetchPolicy):
        self.url = url
        self.kind = kind
        self.field = field
        self.policy = policy
        self.deadline = time.monotonic() + policy.deadline
        self.hop = url  # the URL being fetched: `url`, or where it redirected

    def fail(self, reason: str) -> AssetError:
        hop = f" (redirected to {_short(self.hop)})" if self.hop != self.url else ""
        return AssetError(f"cannot fetch {_short(self.url)}{hop}: {reason}", field=self.field)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.fail(f"it took longer than {self.policy.deadline:g}s (REEL_FETCH_DEADLINE)")
        return left

    def target(self, url: str) -> _Target:
        scheme = url_scheme(url)
        if scheme not in REMOTE_SCHEMES:
            raise self.fail(f"{scheme or 'a relative'} URL is not allowed (only https)")
        if scheme == "http" and not self.policy.allow_http:
            raise self.fail("plain http:// is not allowed, only https:// (REEL_FETCH_ALLOW_HTTP)")
        try:
            check_url(url)
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        parts = urlsplit(url)
        assert parts.hostname is not None  # check_url made sure
        try:
            host = parts.hostname.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise self.fail(f"the host {parts.hostname!r} is not a valid name") from None
        if host.rstrip(".") in METADATA_HOSTS:
            raise self.fail(f"{host} is a cloud metadata service")
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(url, scheme, host, port, path)

    def resolve(self, target: _Target) -> list[IPAddress]:
        """Every address the host resolves to, each checked; one refused refuses the host."""
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(target.host)]
        except ValueError:
            addresses = self._lookup(target)
        for ip in addresses:
            why = address_refusal(ip, self.policy.allow_networks)
            if why is not None:
                shown = target.host if str(ip) == target.host else f"{target.host} ({ip})"
                raise self.fail(f"{shown} is {why}: asset URLs must point to the public internet")
        return addresses

    def _lookup(self, target: _Target) -> list[IPAddress]:
        limit = min(self.policy.connect_timeout, self.remaining())
        future = _resolver().submit(
            socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM
        )
        try:
            infos = future.result(timeout=limit)
        except FutureTimeout:
            raise self.fail(f"looking up {target.host} took longer than {limit:g}s") from None
        except (socket.gaierror, UnicodeError) as exc:
            raise self.fail(f"cannot resolve {target.host}: {exc}") from None
        found: list[IPAddress] = []
        for info in infos:
            # Scoped IPv6 ('fe80::1%eth0') keeps its scope out of the address.
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in found:
                found.append(ip)
        if not found:
            raise self.fail(f"{target.host} has no address")
        return found

    def open(self, target: _Target, addresses: list[IPAddress]) -> urllib3.BaseHTTPResponse:
        """GET the target from the first checked address that accepts a connection."""
        last: Exception | None = None
        for ip in addresses:
            left = self.remaining()
            timeout = urllib3.Timeout(
                connect=min(self.policy.connect_timeout, left),
                read=min(self.policy.read_timeout, left),
            )
            pool = self._pool(target, ip, timeout)
            headers = {
                "Host": target.host_header,
                "User-Agent": "Reel-asset-fetcher/1",
                "Accept": _ACCEPT[self.kind],
                "Accept-Encoding": "identity",
            }
            try:
                return pool.urlopen(
                    "GET",
                    target.path,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                    release_conn=False,
                )
            except (ConnectTimeoutError, NewConnectionError) as exc:
                last = exc  # try the host's next (checked) address
            except ReadTimeoutError:
                raise self.fail(
                    f"{target.host} did not answer within {timeout.read_timeout:g}s"
                ) from None
            except SSLError as exc:
                raise self.fail(f"TLS with {target.host} failed: {_reason(exc)}") from None
            except HTTPError as exc:
                raise self.fail(f"{target.host}: {_reason(exc)}") from None
        raise self.fail(f"cannot connect to {target.host}: {_reason(last)}")

    def _pool(
        self, target: _Target, ip: IPAddress, timeout: urllib3.Timeout
    ) -> urllib3.HTTPConnectionPool:
        # The connection goes to the checked address; the URL's host is only the Host header,
        # the TLS SNI and the name the certificate must carry.
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                str(ip),
                target.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.policy.ca_bundle or certifi.where(),
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        return urllib3.HTTPConnectionPool(
            str(ip), target.port, timeout=timeout, maxsize=1, retries=False
        )

    def run(self) -> Path:
        url = self.url
        for _ in range(self.policy.max_redirects + 1):
            self.hop = url
            target = self.target(url)
            response = self.open(target, self.resolve(target))
            try:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise self.fail(f"a {response.status} redirect without a Location")
                    url = urljoin(url, location.strip())
                    continue
                if response.status != 200:
                    raise self.fail(f"the server answered HTTP {response.status}")
                return self.save(response)
            finally:
                response.close()
                response.release_conn()
        raise self.fail(f"more than {self.policy.max_redirects} redirects")

    def save(self, response: urllib3.BaseHTTPResponse) -> Path:
        cap = self.policy.max_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise self.fail(
                f"the file is {int(declared):,} bytes; the limit is {cap:,} (REEL_FETCH_MAX_BYTES)"
            )
        store = self.policy.store
        store.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=store, prefix=".fetch-", suffix=f".{os.getpid()}.tmp.part"
        )
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        head = b""
        total = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    self.remaining()
                    try:
                        chunk = response.read1(CHUNK, decode_content=False)
                    except ReadTimeoutError:
                        raise self.fail(
                            f"the server stopped sending for {self.policy.read_timeout:g}s"
                        ) from None
                    except HTTPError as exc:
                        raise self.fail(f"the download broke off: {_reason(exc)}") from None
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > cap:
                        raise self.fail(
                            f"the file is over {cap:,} bytes, the limit (REEL_FETCH_MAX_BYTES)"
                        )
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                        if len(head) >= SNIFF_BYTES and (why := kind_error(head, self.kind)):
                            raise self.fail(f"the file {why}")  # refused before the rest
                    digest.update(chunk)
                    out.write(chunk)
            if (why := kind_error(head, self.kind)) is not None:
                raise self.fail(f"the file {why}")
            found = sniff(head)
            assert found is not None
            final = store / f"{digest.hexdigest()}{found[1]}"
            budget = self.policy.budget
            if budget is None:
                os.replace(tmp, final)  # same bytes, same name: a concurrent twin is harmless
                return final
            # Under a budget a name in use is never replaced (a render holds its inode):
            # created if absent, else the copy there (same bytes) is pinned and used.
            for _ in range(3):
                with suppress(FileExistsError):
                    os.link(tmp, final)
                if budget.pin(final):  # False: evicted meanwhile, link ours again
                    break
            else:
                raise self.fail("the copy could not be kept: the cache is full of files in use")
            budget.trim()
            return final
        finally:
            tmp.unlink(missing_ok=True)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no address"
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    return text[:300]


@lru_cache(maxsize=1)
def _resolver() -> ThreadPoolExecutor:
    # getaddrinfo has no timeout of its own: it runs here, and the caller waits a bounded time.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="reel-dns")
