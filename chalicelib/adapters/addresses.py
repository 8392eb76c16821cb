"""Which IP addresses an asset fetch may connect to: networks parsed from text, and the refusals."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """`10.1.0.0/16, 127.0.0.1/32` → networks (host bits allowed); ValueError names a bad
    entry."""
    nets: list[IPNetwork] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{part!r} is not a network (CIDR): {exc}") from None
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
