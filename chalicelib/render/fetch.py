"""Assets behind URLs in data, fetched through one guarded door; every plan's media checked.

`fetch` downloads one https (http only when `REEL_FETCH_ALLOW_HTTP`) URL into a
content-addressed local copy: the host is resolved once, every address it resolves to must be
public (no loopback, private, link-local, CGNAT, multicast, reserved or cloud-metadata
address, IPv4-mapped IPv6 included), and the connection goes to that checked address (no
second lookup, so DNS rebinding cannot switch it) with the URL's Host header and TLS
hostname; redirects are followed by hand, each hop checked the same way. The body is capped
in size, sniffed by its magic bytes for the kind of media expected, and bounded in time
(connect and read timeouts, an overall deadline). Every refusal is an AssetError naming the
variable and the reason.

`localize` is the one place a plan's media become files a render may open: URLs from data
replaced by fetched copies, and every media file (fetched or local) sniffed and checked for
its kind, before any cache key is computed from its bytes or ffmpeg sees it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from PIL import Image, UnidentifiedImageError
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from chalicelib.errors import AssetError
from chalicelib.render.raster import MAX_IMAGE_PIXELS
from chalicelib.settings import Settings, get_settings
from chalicelib.template.plan import RenderPlan
from chalicelib.template.values import REMOTE_SCHEMES, check_url, url_scheme

Kind = Literal["image", "video", "audio"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024
SNIFF_BYTES = 64

# Cloud instance-metadata endpoints: refused even inside REEL_FETCH_ALLOW_NETWORKS.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack…
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS resolver
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")

_ACCEPT = {
    "image": "image/png, image/jpeg, image/gif, image/webp",
    "video": "video/mp4, video/quicktime, video/webm, video/x-matroska",
    "audio": "audio/mp4, audio/mpeg, audio/wav, audio/ogg, audio/flac, audio/aac",
}


# ── the policy ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class FetchPolicy:
    """What the fetcher allows: from settings (`REEL_FETCH_*`), or given by a caller."""

    store: Path
    allow_http: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 25_000_000
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 20.0
    ca_bundle: str | None = None
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def from_settings(cls, s: Settings) -> FetchPolicy:
        return cls(
            store=fetch_dir(s),
            allow_http=s.fetch_allow_http,
            allow_networks=parse_networks(s.fetch_allow_networks),
            max_bytes=s.fetch_max_bytes,
            connect_timeout=s.fetch_connect_timeout,
            read_timeout=s.fetch_read_timeout,
            deadline=s.fetch_deadline,
            ca_bundle=str(s.fetch_ca_bundle) if s.fetch_ca_bundle else None,
        )


def fetch_dir(s: Settings) -> Path:
    """Where fetched copies are kept: `cache_dir/fetched` locally; on AWS (no home to write
    in) the scratch directory."""
    if s.work_dir is not None:
        return (s.work_dir / "fetched").resolve()
    if s.backend == "aws":
        return Path(tempfile.gettempdir()).resolve() / "reel" / "fetched"
    return (s.cache_dir / "fetched").resolve()


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """`10.1.0.0/16, 127.0.0.1/32` → networks; ValueError names a bad entry."""
    nets = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"REEL_FETCH_ALLOW_NETWORKS: {part!r} is not a network: {exc}"
            ) from exc
    return tuple(nets)


def address_refusal(ip: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why a fetch may not connect to `ip` ('a loopback address'…), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_refusal(ip.ipv4_mapped, allowed)  # ::ffff:127.0.0.1 is 127.0.0.1
        # Forms that carry an IPv4 address inside (6to4, NAT64, Teredo): judged by it first.
        inner = [ip.sixtofour]
        if ip in NAT64:
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            inner.extend(ip.teredo)
        for v4 in inner:
            if v4 is not None and (why := address_refusal(v4, allowed)) is not None:
                return f"{why} (inside {ip})"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if any(ip in net for net in allowed if net.version == ip.version):
        return None
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_reserved, "a reserved address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


# ── sniffing and checking media files ─────────────────────────────────────────────────────


def sniff(head: bytes) -> tuple[str, str] | None:
    """(family, extension) of a media file from its first bytes; None when unrecognised.
    Families: image, video (MP4/MOV or WebM/Matroska), audio, mp4 (ftyp: video or audio)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "mp4", ".m4a"
        return "mp4", ".mov" if brand == b"qt  " else ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".webm" if b"webm" in head else ".mkv"
    if head.startswith(b"ID3"):
        return "audio", ".mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", ".wav"
    if head.startswith(b"OggS"):
        return "audio", ".ogg"
    if head.startswith(b"fLaC"):
        return "audio", ".flac"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 is AAC in ADTS.
        return "audio", ".aac" if head[1] & 0x06 == 0 else ".mp3"
    return None


def _fits(family: str, kind: Kind) -> bool:
    return family == kind or (family == "mp4" and kind in ("video", "audio"))


def describe(head: bytes) -> str:
    """What unrecognised content looks like, in words (for the error)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist (#EXTM3U)"
    if text.startswith(b"ffconcat") or text.startswith(b"file "):
        return "an ffmpeg concat script"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing (not accepted: it can reference other files)"
    if text.startswith(b"<"):
        return "XML or HTML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if not head:
        return "empty"
    return f"unrecognised content (starting {head[:8].hex()})"


def _kind_error(head: bytes, kind: Kind) -> str | None:
    found = sniff(head)
    if found is None:
        return f"is not {_article(kind)} Reel accepts: it is {describe(head)}"
    family, ext = found
    if not _fits(family, kind):
        return f"is not {_article(kind)}: it is a {ext.lstrip('.').upper()} {family} file"
    return None


def _article(kind: Kind) -> str:
    return {"image": "an image", "video": "a video", "audio": "an audio file"}[kind]


def _mp4_problem(path: Path, size: int) -> str | None:
    """Walk the top-level boxes of an MP4/MOV: a box running past the end of the file, or no
    `moov` box, is a truncated or unfinished file ffmpeg would fail on mid-render."""
    seen: set[bytes] = set()
    offset = 0
    with path.open("rb") as fh:
        for _ in range(10_000):  # a real file has a handful of top-level boxes
            if offset >= size:
                break
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return f"is truncated: {size - offset} stray bytes at its end"
            length, box = struct.unpack(">I4s", header[:8])
            if length == 1:
                if len(header) < 16:
                    return "is truncated inside a box header"
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:
                length = size - offset  # the last box runs to the end of the file
            if length < 8:
                return f"is corrupt: a box of {length} bytes at offset {offset}"
            if offset + length > size:
                name = box.decode("latin-1")
                return (
                    f"is truncated: its {name!r} box needs {length:,} bytes, "
                    f"only {size - offset:,} are there"
                )
            seen.add(box)
            offset += length
        else:
            return "has too many boxes to be a media file"
    if b"moov" not in seen:
        return "has no 'moov' box: it is truncated or was never finished"
    return None


def _declared_size(head: bytes) -> tuple[int, int] | None:
    """The size a PNG or GIF header declares (read before Pillow, to name it in the error)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    return None


def _image_problem(path: Path, head: bytes) -> str | None:
    """Read the image's header (no pixels): something Pillow reads, and not a bomb."""
    declared = _declared_size(head)
    if declared is not None and declared[0] * declared[1] > MAX_IMAGE_PIXELS:
        w, h = declared
        return f"is {w}×{h}: over {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"is too large: over {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"
    except UnidentifiedImageError:
        return "is not an image Reel can read"
    except OSError as exc:
        return f"cannot be read: {exc}"
    if w * h > MAX_IMAGE_PIXELS:
        return f"is {w}×{h}: over {MAX_IMAGE_PIXELS:,} pixels"
    return None


@lru_cache(maxsize=1024)
def _media_problem(path: str, size: int, mtime_ns: int, kind: Kind) -> str | None:
    p = Path(path)
    if size == 0:
        return "is empty"
    with p.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if (problem := _kind_error(head, kind)) is not None:
        return problem
    family, _ = sniff(head) or ("", "")
    if family == "image":
        return _image_problem(p, head)
    if family == "mp4":
        return _mp4_problem(p, size)
    return None


def check_media(path: Path, kind: Kind, *, field: str, name: str | None = None) -> None:
    """Refuse a media file that is not of `kind` (by its bytes, never its name), is a
    decompression bomb, or is visibly truncated. Memoized while the file is unchanged."""
    label = name or path.name
    try:
        st = path.stat()
    except OSError as exc:
        raise AssetError(f"{label}: cannot be read: {exc.strerror}", field=field) from exc
    problem = _media_problem(str(path), st.st_size, st.st_mtime_ns, kind)
    if problem is not None:
        raise AssetError(f"{label} {problem}", field=field)


# ── fetching ──────────────────────────────────────────────────────────────────────────────


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
                        if len(head) >= SNIFF_BYTES and (why := _kind_error(head, self.kind)):
                            raise self.fail(f"the file {why}")  # refused before the rest
                    digest.update(chunk)
                    out.write(chunk)
            if (why := _kind_error(head, self.kind)) is not None:
                raise self.fail(f"the file {why}")
            found = sniff(head)
            assert found is not None
            final = store / f"{digest.hexdigest()}{found[1]}"
            os.replace(tmp, final)  # same bytes, same name: a concurrent twin is harmless
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


def fetch(url: str, kind: Kind, *, field: str, policy: FetchPolicy | None = None) -> Path:
    """A local, content-addressed copy (`<sha256>.<ext>`) of the media at `url`, checked to be
    of `kind`; AssetError (naming `field`) says why it was refused."""
    policy = policy or FetchPolicy.from_settings(get_settings())
    path = _Fetch(url, kind, field, policy).run()
    check_media(path, kind, field=field, name=f"the {kind} at {_short(url)}")
    return path


# ── plans ─────────────────────────────────────────────────────────────────────────────────


def _field_of(ref: str, record: dict[str, Any], where: str) -> str:
    """The variable a media ref came from (when the record gave it), else its place."""
    for name, value in record.items():
        if not isinstance(value, str) or not value:
            continue
        if value == ref:
            return name
        if url_scheme(value) is None:
            rel = PurePosixPath(value.replace("\\", "/"))
            parts = [p for p in rel.parts if p not in (".", "/")]
            if parts and PurePosixPath(ref).parts[-len(parts) :] == tuple(parts):
                return name
    return where


def localize(plan: RenderPlan, *, policy: FetchPolicy | None = None) -> RenderPlan:
    """The plan with every URL from data replaced by its fetched copy and every media file
    checked for its kind. The step between binding and anything that renders or keys a plan:
    where a plan is bound (`steps.make_job`, the stream's binding in delivery/stream.py), and
    in `engine.render` for plans bound elsewhere (`reel render`); idempotent, cheap once done."""
    memo: dict[tuple[str, str], str] = {}

    def local(ref: str, kind: Kind, where: str) -> str:
        if (ref, kind) in memo:
            return memo[(ref, kind)]
        field = _field_of(ref, plan.record, where)
        if url_scheme(ref) is not None:
            path = fetch(ref, kind, field=field, policy=policy)
        else:
            path = Path(ref)
            check_media(path, kind, field=field)
        memo[(ref, kind)] = str(path)
        return str(path)

    scenes = []
    for scene in plan.scenes:
        bg = scene.background
        bg_update: dict[str, str] = {}
        if bg.image:
            bg_update["image"] = local(bg.image, "image", f"{scene.id}.background.image")
        if bg.video:
            bg_update["video"] = local(bg.video, "video", f"{scene.id}.background.video")
        layers = []
        for i, pl in enumerate(scene.layers):
            src = getattr(pl.layer, "src", None)
            if src is None:
                layers.append(pl)
                continue
            kind: Kind = "video" if pl.layer.type == "video" else "image"
            new = local(src, kind, f"{scene.id}.layers[{i}].src")
            layers.append(
                pl
                if new == src
                else pl.model_copy(update={"layer": pl.layer.model_copy(update={"src": new})})
            )
        update: dict[str, Any] = {"layers": layers}
        if bg_update and any(bg_update[k] != getattr(bg, k) for k in bg_update):
            update["background"] = bg.model_copy(update=bg_update)
        scenes.append(scene.model_copy(update=update))
    cues = [
        cue.model_copy(update={"src": local(cue.src, "audio", f"cues[{i}].src")})
        for i, cue in enumerate(plan.cues)
    ]
    music = plan.music
    if music.music:
        music = music.model_copy(update={"music": local(music.music, "audio", "audio.music")})
    return plan.model_copy(update={"scenes": scenes, "cues": cues, "music": music})
