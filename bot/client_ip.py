"""Whose request this is: the peer's address, or behind a trusted proxy the address it forwards.

Limits and login throttling count per client address, so a client must not be able to choose its own: an
`X-Forwarded-For` header is believed only from a peer in `KEFU_TRUSTED_PROXIES` (default: this machine only,
where a reverse proxy usually runs). The header is read from the right, skipping trusted proxies, so what a
client wrote at its left end never counts. The middleware sets `request.remote` to the address found, so every
route (limits, login throttling, the loopback-only endpoints) sees the client rather than the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp import web
from pydantic import IPvAnyNetwork, TypeAdapter, ValidationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES_ENV = "KEFU_TRUSTED_PROXIES"
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

_NETWORKS = TypeAdapter(list[IPvAnyNetwork])


class AddressListError(ValueError):
    """A CIDR list setting that does not parse (the message names the setting)."""


def networks(text: str, setting: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.7, ::1` → networks (a bare address is a /32 or /128)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return tuple(_NETWORKS.validate_python(items))
    except ValidationError as exc:
        bad = [items[err["loc"][0]] for err in exc.errors() if err.get("loc")]
        raise AddressListError(f"{setting}: {', '.join(map(repr, bad))} is not an address or network like "
                               "10.0.0.0/8 (no host bits after the slash)") from None


def within(address: str | None, nets: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    return any(ip in net for net in nets)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client: the peer itself unless it is a trusted proxy; then the nearest hop in X-Forwarded-For that
    is not a trusted proxy (a garbled hop ends the walk at the last proxy that can be believed)."""
    if not within(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    address = peer
    for hop in reversed(hops):
        if not within(hop, trusted):
            return hop if _is_address(hop) else address
        address = hop
    return address


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def middleware(trusted: Sequence[Network]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Every request's `remote` becomes its client's address (see the module's docstring)."""

    @web.middleware
    async def client_ip(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        if forwarded and trusted:
            address = client_address(request.remote, forwarded, trusted)
            if address != request.remote:
                request = request.clone(remote=address)
        return await handler(request)

    return client_ip
