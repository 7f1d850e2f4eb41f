"""Refuse alert destinations that point inside the network (server-side request forgery).

``check_host`` turns a URL host into the one IP address the sender must connect to: a literal
(including the inet_aton forms ``2130706433``, ``0x7f.1``, ``017700000001``) is parsed, a name
is resolved, and every answer must be public. Refused: private, loopback, link-local,
unique-local, shared (CGNAT), multicast, unspecified, reserved, and IPv6 forms embedding such
an IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4, Teredo). ``allow_private`` opts into
non-public addresses, but cloud metadata endpoints stay refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedDestination(Exception):
    """The destination is not allowed; ``reason`` says why. Never worth retrying."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refusing to send to {host}: {reason}")
        self.reason = reason


def parse_literal(host: str) -> IP | None:
    """An IP address if ``host`` is one in any form the C resolver accepts, else ``None``."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c.isalnum() or c == "." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal(ip: IP, allow_private: bool = False) -> str | None:
    """Why ``ip`` is refused, or ``None`` when it may be used."""
    if ip in METADATA:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return refusal(inner, allow_private)
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified:
        return "unspecified address"
    if allow_private or ip.is_global:
        return None
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    return "private or reserved address"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_host(
    host: str, port: int, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> IP:
    """The address to connect to; raises ``BlockedDestination`` if any candidate is refused."""
    literal = parse_literal(host)
    if literal is not None:
        candidates = [literal]
    else:
        try:
            answers = await resolver(host, port)
        except OSError as exc:
            raise BlockedDestination(host, f"cannot resolve: {exc}") from None
        candidates = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
    if not candidates:
        raise BlockedDestination(host, "no address")
    for ip in candidates:
        reason = refusal(ip, allow_private)
        if reason is not None:
            raise BlockedDestination(host, f"{ip}: {reason}")
    return candidates[0]
