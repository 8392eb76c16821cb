"""Asset URLs in data go through one guarded fetcher: https only, public addresses only (checked
after DNS and after every redirect, the connection pinned to the checked address), a size cap,
timeouts and a deadline, and content sniffed by its bytes. Real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.addresses import address_refusal
from chalicelib.adapters.fetcher import HttpFetcher
from chalicelib.errors import AssetError, DataError
from chalicelib.pipeline.folder import RESULTS, read_results
from chalicelib.pipeline.steps import make_job
from chalicelib.render.engine import render
from chalicelib.settings import get_settings
from chalicelib.template.library import load_template
from tests.conftest import Campaign, run_batch
from tests.fakes.assets import AssetHost, fake_dns
from tests.media import frame_at

Setenv = Callable[..., None]


@pytest.fixture
def setenv(monkeypatch: pytest.MonkeyPatch) -> Setenv:
    """Set REEL_* variables and re-read the settings."""

    def set_(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"REEL_{name.upper()}", str(value))
        bootstrap.reset()

    return set_


@pytest.fixture
def host() -> Iterator[AssetHost]:
    """An HTTPS asset host on 127.0.0.1 (certificate for 127.0.0.1 and localhost)."""
    with AssetHost(tls=True) as h:
        yield h


@pytest.fixture
def trusted(host: AssetHost, setenv: Setenv) -> AssetHost:
    """The escape hatch tests need: the test CA trusted, 127.0.0.1 (only) reachable, and
    small timeouts."""
    assert host.tls_files is not None
    setenv(
        fetch_ca_bundle=host.tls_files.ca,
        fetch_allow_networks="127.0.0.1/32",
        fetch_connect_timeout=2,
        fetch_read_timeout=0.5,
        fetch_deadline=3,
    )
    return host


@pytest.fixture
def png(campaign: Campaign) -> bytes:
    return (campaign.root / "assets" / "avatar.png").read_bytes()  # 50×50, green


def fetched_dir() -> Path:
    return get_settings().cache_dir.resolve() / "fetched"


def fetcher() -> HttpFetcher:
    """The fetcher the REEL_FETCH_* settings describe, as the wiring builds it: a test sets the
    environment once, and a batch and a direct fetch see the same policy and the same store."""
    return bootstrap.fetcher(get_settings())


def refused(url: str, kind: str = "image") -> str:
    with pytest.raises(AssetError) as info:
        fetcher().fetch(url, kind, field="avatar")  # type: ignore[arg-type]
    assert info.value.field == "avatar"
    return info.value.message


def test_an_image_url_in_data_is_fetched_and_rendered(
    campaign: Campaign, trusted: AssetHost, png: bytes, out: Path
) -> None:
    # GIVEN a recipient whose avatar is an https URL
    url = trusted.serve("/people/ann.png", png, "image/png")
    lt = load_template(campaign.template)
    job = make_job(lt, {"first_name": "Ann", "avatar": url}, "ann", 0, fetcher=fetcher())
    # THEN the plan holds a local, content-addressed copy of the bytes
    src = Path(job.plan.scenes[1].layers[1].layer.src)  # type: ignore[union-attr]
    assert src == fetched_dir() / f"{hashlib.sha256(png).hexdigest()}.png"
    assert src.read_bytes() == png
    # AND the output's key comes from the bytes: the same picture given as a file, same key
    local = make_job(
        lt, {"first_name": "Ann", "avatar": "assets/avatar.png"}, "ann", 0, fetcher=fetcher()
    )
    assert job.output_key == local.output_key
    # AND the video shows it (green, in the circle at (136, 19))
    frame = frame_at(render(job.plan, out / "ann.mp4").path, 15).astype(int)
    assert frame[19, 136, 1] > 150 and frame[19, 136, 0] < 100
    # AND the request was an ordinary, uncompressed GET for that path with its Host
    [hit] = trusted.hits
    assert hit.path == "/people/ann.png"
    assert hit.headers["host"] == f"127.0.0.1:{trusted.port}"
    assert hit.headers["accept-encoding"] == "identity"
    # AND fetching it again lands on the same file, with nothing half-written beside it
    assert fetcher().fetch(url, "image", field="avatar") == src
    assert sorted(p.name for p in fetched_dir().iterdir()) == [src.name]


def test_loopback_is_refused_unless_explicitly_allowed(
    host: AssetHost, png: bytes, setenv: Setenv
) -> None:
    assert host.tls_files is not None
    url = host.serve("/a.png", png, "image/png")
    # GIVEN the test CA trusted but no network allowed: 127.0.0.1 is refused before connecting
    setenv(fetch_ca_bundle=host.tls_files.ca)
    assert "127.0.0.1 is a loopback address" in refused(url)
    assert host.hits == []
    # WHEN the escape hatch names it, the same URL is fetched
    setenv(fetch_allow_networks="127.0.0.0/8")
    assert fetcher().fetch(url, "image", field="avatar").read_bytes() == png


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped IPv6
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("169.254.10.10", "link-local"),
        ("169.254.169.254", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
        ("[64:ff9b::a9fe:a9fe]", "metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, reason: str) -> None:
    assert reason in refused(f"https://{address}/a.png")


def test_metadata_addresses_stay_refused_whatever_is_allowed(setenv: Setenv) -> None:
    setenv(fetch_allow_networks="0.0.0.0/0,::/0")
    assert "metadata" in refused("https://169.254.169.254/latest/meta-data/")
    assert "metadata" in refused("https://[::ffff:169.254.169.254]/latest/meta-data/")
    assert "metadata service" in refused("https://metadata.google.internal/computeMetadata/v1/")
    # AND public addresses are what the checks let through
    for public in ("93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"):
        import ipaddress

        assert address_refusal(ipaddress.ip_address(public)) is None


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN names whose DNS answers include an internal address (one among public ones too)
    names = {
        "intranet.example.test": ["10.0.0.7"],
        "mixed.example.test": ["93.184.216.34", "192.168.0.10"],
        "mapped.example.test": ["::ffff:169.254.169.254"],
    }
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns(names, socket.getaddrinfo))
    assert "(10.0.0.7) is a private address" in refused("https://intranet.example.test/a.png")
    assert "(192.168.0.10) is a private address" in refused("https://mixed.example.test/a.png")
    assert "metadata" in refused("https://mapped.example.test/a.png")


def test_the_connection_is_pinned_to_the_checked_address(
    trusted: AssetHost, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a resolver that counts its lookups of names
    looked_up: list[str] = []
    real = fake_dns(
        {"localhost": ["127.0.0.1"], "cdn.example.test": ["127.0.0.1"]}, socket.getaddrinfo
    )

    def counting(host: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if isinstance(host, str) and not host[0].isdigit():
            looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    trusted.serve("/a.png", png, "image/png")
    # WHEN a named host is fetched: one lookup, the name as Host and in TLS
    path = fetcher().fetch(f"https://localhost:{trusted.port}/a.png", "image", field="avatar")
    assert path.read_bytes() == png
    assert looked_up == ["localhost"]
    assert trusted.hits[-1].headers["host"] == f"localhost:{trusted.port}"
    # AND a name its certificate does not carry fails TLS although the address is the same
    message = refused(f"https://cdn.example.test:{trusted.port}/a.png")
    assert "TLS with cdn.example.test failed" in message and "match" in message


def test_every_redirect_is_checked_again(trusted: AssetHost, png: bytes) -> None:
    port = trusted.port
    trusted.serve("/a.png", png, "image/png")
    # GIVEN an allowed host that redirects
    hops = {
        "/to-loopback": (f"https://127.0.0.2:{port}/a.png", "127.0.0.2 is a loopback address"),
        "/to-metadata": ("https://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        "/to-v6": (f"https://[::1]:{port}/a.png", "::1 is a loopback address"),
        "/to-file": ("file:///etc/passwd", "file URL is not allowed"),
        "/to-http": (f"http://127.0.0.1:{port}/a.png", "plain http:// is not allowed"),
    }
    for path, (location, reason) in hops.items():
        url = trusted.redirect(path, location)
        # THEN the hop is refused before anything is asked of its target
        message = refused(url)
        assert reason in message and "redirected to" in message, message
    assert trusted.paths() == list(hops)
    # AND a redirect that stays allowed is followed (relative, like most)
    trusted.redirect("/moved", "/a.png", status=301)
    assert fetcher().fetch(trusted.url + "/moved", "image", field="avatar").read_bytes() == png
    # AND a chain longer than 5 is refused
    for i in range(7):
        trusted.redirect(f"/loop{i}", f"/loop{i + 1}")
    assert "more than 5 redirects" in refused(trusted.url + "/loop0")


def test_a_body_that_never_ends_stops_at_the_size_cap(
    trusted: AssetHost, png: bytes, setenv: Setenv
) -> None:
    setenv(fetch_max_bytes=1_000_000)
    # GIVEN a PNG header followed by zeros, without a length, for ever (bounded by the fake)
    message = refused(trusted.endless("/forever.png", png[:64]))
    assert "over 1,000,000 bytes" in message
    # AND a declared length over the cap is refused before the body is read
    big = trusted.serve("/big.png", png[:64] + bytes(1_200_000), "image/png")
    assert "1,200,064 bytes; the limit is 1,000,000" in refused(big)
    # AND nothing is left behind, not even a partial file
    assert not fetched_dir().exists() or list(fetched_dir().iterdir()) == []


def test_a_silent_or_slow_server_times_out(trusted: AssetHost, png: bytes, setenv: Setenv) -> None:
    # Each timeout is at least ten times shorter or longer than what it is tested against, so a
    # busy machine (a thread scheduled late) cannot make one fire for the other.
    # GIVEN servers that stall (10 s) before answering or in the middle of the body
    before = trusted.serve("/slow-start.png", png, "image/png", stall=10)
    middle = trusted.serve("/stalled.png", png, "image/png", stall_mid_body=10)
    # THEN each is refused with the read timeout (0.5 s), not waited for
    assert "did not answer within 0.5s" in refused(before)
    assert "stopped sending for 0.5s" in refused(middle)
    # GIVEN a server that sends a byte every 0.05 s: the whole takes 7 s or more
    drip = trusted.serve("/drip.png", png, "image/png", drip=0.05)
    assert len(png) * 0.05 >= 5
    # WHEN no pause may last 30 s, but the whole download only 1.5 s (each read then waits at
    # most the 1.5 s left: still 30 times a pause)
    setenv(fetch_read_timeout=30, fetch_deadline=1.5)
    # THEN it is refused by the deadline: each byte in time, the whole too slow
    assert "took longer than 1.5s" in refused(drip)


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "said"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "image/png", "image", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>',
         "image/svg+xml", "image", "SVG"),
        (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "image/png", "image", "HLS playlist"),
        (b"\x1f\x8b\x08\x00" + bytes(60), "image/png", "image", "gzip"),
        (b"ffconcat version 1.0\nfile '/etc/passwd'\n", "video/mp4", "video", "concat script"),
    ],
)  # fmt: skip
def test_content_is_sniffed_not_trusted(
    trusted: AssetHost, body: bytes, content_type: str, kind: str, said: str
) -> None:
    url = trusted.serve("/x", body, content_type)
    assert said in refused(url, kind)


def test_a_picture_is_not_a_video(trusted: AssetHost, png: bytes) -> None:
    url = trusted.serve("/clip.mp4", png, "video/mp4")
    assert "is not a video: it is a PNG image file" in refused(url, "video")


def test_plain_http_only_when_configured(png: bytes, setenv: Setenv) -> None:
    with AssetHost(tls=False) as plain:
        url = plain.serve("/a.png", png, "image/png")
        setenv(fetch_allow_networks="127.0.0.1/32")
        assert "plain http:// is not allowed" in refused(url)
        assert plain.hits == []
        setenv(fetch_allow_http="true")
        assert fetcher().fetch(url, "image", field="avatar").read_bytes() == png


def test_each_bad_value_fails_its_recipient_alone(
    campaign: Campaign, trusted: AssetHost, png: bytes, tmp_path: Path
) -> None:
    # GIVEN a batch where some avatars are URLs Reel must never open
    good = trusted.serve("/ok.png", png, "image/png")
    meta = trusted.redirect("/meta", "https://169.254.169.254/latest/meta-data/iam/")
    rows = {
        "url": good,
        "file": "file:///etc/passwd",
        "data": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
        "ftp": "ftp://example.com/a.png",
        "gopher": "gopher://127.0.0.1:6379/_FLUSHALL",
        "meta": meta,
    }
    data = tmp_path / "people.jsonl"
    data.write_text(
        "".join(
            f'{{"recipient_id": "{rid}", "first_name": "A", "avatar": "{avatar}"}}\n'
            for rid, avatar in rows.items()
        )
    )
    # WHEN it runs
    summary = run_batch(campaign.template, data, tmp_path / "out")
    # THEN the good one is rendered and each bad one failed alone, with its code and field
    results = {r.recipient_id: r for r in read_results(tmp_path / "out" / RESULTS)}
    assert summary.counts["rendered"] == 1 and results["url"].status.value == "rendered"
    for rid in ("file", "data", "ftp", "gopher"):
        r = results[rid]
        assert (r.status.value, r.code, r.field) == ("failed", "invalid_data", "avatar"), r
        assert f"{rid}: URLs are not allowed" in (r.reason or "")
    r = results["meta"]
    assert (r.status.value, r.code, r.field) == ("failed", "invalid_asset", "avatar")
    assert "cloud metadata" in (r.reason or "")


def test_a_file_url_is_a_data_error_before_anything_is_fetched(campaign: Campaign) -> None:
    lt = load_template(campaign.template)
    for value in ("file:///etc/passwd", "FILE:///etc/shadow", "data:,x", "ftp://x/a.png"):
        with pytest.raises(DataError) as info:
            make_job(lt, {"first_name": "A", "avatar": value}, "r", 0, fetcher=fetcher())
        assert info.value.field == "avatar"


def test_a_stream_fetches_before_it_plans(
    campaign: Campaign, trusted: AssetHost, png: bytes
) -> None:
    from chalicelib import bootstrap
    from chalicelib.services import recipients, templates

    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    url = trusted.serve("/ann.png", png, "image/png")
    # GIVEN two recipients, the same picture given by URL and as a file of the campaign
    by_url = recipients.set_recipient_data(b, "tiny", "ann", {"first_name": "Ann", "avatar": url})
    by_file = recipients.set_recipient_data(
        b, "tiny", "bob", {"first_name": "Ann", "avatar": "assets/avatar.png"}
    )
    # WHEN their streams are planned (the just-in-time HLS path)
    streams = bootstrap.streams()
    a, f = streams.open(by_url.token), streams.open(by_file.token)
    # THEN the URL's stream renders from the fetched copy, and its chunks are the same ones
    src = a.plan.scenes[1].layers[1].layer.src  # type: ignore[union-attr]
    assert Path(src).parent == fetched_dir()
    name = a.stream.renditions[0].name
    assert [c.key for c in a.stream.chunks(name)] == [c.key for c in f.stream.chunks(name)]
    # AND a URL the fetcher refuses is refused when the data arrives, naming the variable
    bad = trusted.redirect("/bad", f"https://127.0.0.9:{trusted.port}/x.png")
    with pytest.raises(AssetError) as info:
        recipients.set_recipient_data(b, "tiny", "eve", {"first_name": "E", "avatar": bad})
    assert info.value.field == "avatar"
