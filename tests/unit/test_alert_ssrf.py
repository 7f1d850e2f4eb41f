from __future__ import annotations

import asyncio
import ipaddress

import pytest

from alerting.ssrf import BlockedDestination, check_host, parse_literal

DNS = {
    "localhost": ["127.0.0.1", "::1"],
    "hooks.example": ["93.184.216.34"],
    "rebind.example": ["93.184.216.34", "10.0.0.5"],
    "v6.example": ["2606:4700::1111"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError("no such host")
    return DNS[host]


def check(host: str, allow_private: bool = False) -> str:
    ip = asyncio.run(check_host(host, 443, allow_private=allow_private, resolver=fake_resolver))
    return str(ip)


REFUSED = [
    "127.0.0.1",
    "[::1]",
    "169.254.169.254",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "2002:7f00:1::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "100.100.100.200",
    "224.0.0.1",
    "ff02::1",
    "0.0.0.0",
    "::",
    "240.0.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "017700000001",
    "localhost",
    "rebind.example",
    "unknown.example",
]


@pytest.mark.parametrize("host", REFUSED)
def test_internal_destinations_are_refused(host: str) -> None:
    with pytest.raises(BlockedDestination):
        check(host)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("93.184.216.34", "93.184.216.34"),
        ("[2606:4700::1111]", "2606:4700::1111"),
        ("hooks.example", "93.184.216.34"),
        ("v6.example", "2606:4700::1111"),
        ("1.1.1.1", "1.1.1.1"),
    ],
)
def test_public_destinations_resolve_to_the_address_to_connect_to(host: str, expected: str) -> None:
    assert check(host) == expected


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "localhost", "[::1]"])
def test_the_private_network_opt_in_allows_internal_addresses(host: str) -> None:
    assert ipaddress.ip_address(check(host, allow_private=True)).is_private


@pytest.mark.parametrize("host", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_metadata_endpoints_stay_refused_even_with_the_opt_in(host: str) -> None:
    with pytest.raises(BlockedDestination, match="metadata"):
        check(host, allow_private=True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("hooks.example", None),
        ("1e100.net", None),
    ],
)
def test_ip_literals_are_read_the_way_the_c_resolver_reads_them(
    host: str, expected: str | None
) -> None:
    parsed = parse_literal(host)
    assert (None if parsed is None else str(parsed)) == expected
