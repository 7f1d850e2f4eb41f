"""Who sent a request: the client's IP address and user agent, stamped on every event.

The IP is the direct peer's, unless that peer is a trusted proxy (a CIDR of
``PULSELINE_TRUSTED_PROXIES``; none by default, so a forged ``X-Forwarded-For`` from
the internet changes nothing). From a trusted peer, ``X-Forwarded-For`` is walked right
to left, skipping trusted hops, as nginx's ``real_ip_recursive on`` does:

- the first address that is not a trusted proxy is the client;
- when every address is trusted, the leftmost one is the client;
- an entry that is not an IP address stops the walk: nothing to its left can be
  vouched for, so the client is the last address that could (the hop to its right).

Addresses come back in canonical text (``2001:db8::1``); an IPv4-mapped IPv6 address
is read as its IPv4 address. The user agent is cut to ``MAX_USER_AGENT_CHARS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.requests import Request

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Real browsers send under 300 characters; the cut bounds what a client can make us store.
MAX_USER_AGENT_CHARS = 512


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 has at least two colons
        text = text.partition(":")[0]
    try:
        found = ip_address(text)
    except ValueError:
        return None
    if isinstance(found, IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` is believed."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, cidrs: str) -> TrustedProxies:
        """From a comma-separated CIDR list; raises ``ValueError`` naming a bad entry."""
        networks: list[Network] = []
        for part in cidrs.split(","):
            if part.strip():
                try:
                    networks.append(ip_network(part.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"not an IP network: {part.strip()!r}") from None
        return cls(networks)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies
) -> str | None:
    """The client's address; ``forwarded_for`` holds every ``X-Forwarded-For`` line in order."""
    address = parse_address(peer) if peer else None
    if address is None:
        return None
    if not trusted.trusts(address):
        return str(address)
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        found = parse_address(hop)
        if found is None:
            break
        address = found
        if not trusted.trusts(found):
            break
    return str(address)


def user_agent(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    return raw.strip()[:MAX_USER_AGENT_CHARS]


def request_client(request: Request, trusted: TrustedProxies) -> ClientInfo:
    peer = request.client.host if request.client is not None else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return ClientInfo(
        client_ip(peer, forwarded, trusted), user_agent(request.headers.get("user-agent"))
    )
