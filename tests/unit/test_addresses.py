"""CIDR lists parsed in one place, for the fetcher's policy and the settings that hold them."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from chalicelib.adapters.addresses import address_refusal, parse_networks
from chalicelib.settings import Settings


def test_networks_are_parsed_from_a_comma_separated_list() -> None:
    assert parse_networks(" 10.1.0.0/16, ,127.0.0.1,::1/128 ") == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks("") == ()
    # host bits set are taken as the network they belong to
    assert parse_networks("192.168.1.7/24") == (ipaddress.ip_network("192.168.1.0/24"),)


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network"):
        parse_networks("127.0.0.1/32, 10.0.0.0/33")


def test_the_setting_is_checked_by_the_same_parser() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(fetch_allow_networks="127.0.0.1/32,intranet")
    assert "'intranet' is not a network (CIDR)" in str(info.value)
    assert Settings(fetch_allow_networks="127.0.0.1/32").fetch_allow_networks == "127.0.0.1/32"


def test_an_allowed_network_lets_a_private_address_through_but_never_metadata() -> None:
    allowed = parse_networks("10.0.0.0/8, 169.254.0.0/16")
    assert address_refusal(ipaddress.ip_address("10.1.2.3")) == "a private address"
    assert address_refusal(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert address_refusal(ipaddress.ip_address("169.254.169.254"), allowed) == (
        "a cloud metadata address"
    )
