"""Whose request it is (bot/client_ip.py): X-Forwarded-For counts only from a trusted proxy and is read from the
right, so a client cannot pick the address its limits, its login throttling and loopback-only routes see."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.client_ip import LOOPBACK, client_address, networks

ROOT = Path(__file__).resolve().parent.parent
PROXIES = (*LOOPBACK, *networks("10.0.0.0/8", "test"))


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("198.51.100.7", ["203.0.113.1"], "198.51.100.7"),  # not a proxy of ours: its header means nothing
    ("127.0.0.1", [], "127.0.0.1"),  # the proxy said nothing: the proxy is the client
    ("127.0.0.1", ["203.0.113.1"], "203.0.113.1"),
    ("127.0.0.1", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),  # the client wrote 6.6.6.6 itself
    ("127.0.0.1", ["6.6.6.6", "203.0.113.1"], "203.0.113.1"),  # two headers are one list
    ("127.0.0.1", ["203.0.113.1, 10.1.2.3"], "203.0.113.1"),  # through two proxies of ours
    ("127.0.0.1", ["203.0.113.1, not-an-ip"], "127.0.0.1"),  # garbled by a hop: the last one we trust
    ("127.0.0.1", ["10.0.0.5, 10.1.2.3"], "10.0.0.5"),  # only proxies: the farthest one
    ("::ffff:127.0.0.1", ["2001:db8::1"], "2001:db8::1"),  # IPv4 loopback seen on an IPv6 socket
    ("::1", [" 2001:db8::2 "], "2001:db8::2"),
])
def test_the_client_is_the_nearest_address_that_is_not_a_trusted_proxy(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


def test_nobody_trusted_means_the_header_is_never_read():
    assert client_address("127.0.0.1", ["203.0.113.1"], ()) == "127.0.0.1"


def test_an_address_list_takes_bare_addresses_and_networks():
    assert [str(n) for n in networks(" 10.0.0.0/8,192.0.2.7 , ::1", "X")] == ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]


async def test_a_loopback_only_route_is_not_opened_to_outsiders_by_a_local_proxy(aiohttp_client, starter_model,
                                                                                tmp_path):
    """Without an API token the tracker is for this machine only; behind nginx on this machine every request
    comes from 127.0.0.1, so it is the forwarded address that must decide."""
    from bot.server import ServerSettings, create_app

    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/conversations/nobody/tracker")).status == 404  # here: allowed, nothing there
    outsider = await client.get("/conversations/nobody/tracker", headers={"X-Forwarded-For": "203.0.113.5"})
    assert outsider.status == 403
    local = await client.get("/conversations/nobody/tracker", headers={"X-Forwarded-For": "127.0.0.1"})
    assert local.status == 404
