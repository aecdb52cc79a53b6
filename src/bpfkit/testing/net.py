"""Network fixtures for tests: a veth pair whose peer lives in a fresh network namespace,
with addresses from a random free /30, deleted again on close."""

from __future__ import annotations

import ipaddress
import itertools
import os
import random

from .. import netlink
from ..errors import BpfkitError, NotFound
from ..netns import NetNS, open_netns

_counter = itertools.count()


def _pick_subnet(used: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> ipaddress.IPv4Network:
    """A random /30 in 10.200.0.0/13 that overlaps no address already configured."""
    base = ipaddress.IPv4Network("10.200.0.0/13")
    for _ in range(200):
        n = base.network_address + random.randrange(0, base.num_addresses // 4) * 4
        net = ipaddress.IPv4Network(f"{n}/30")
        if not any(net.overlaps(u) for u in used if u.version == 4):
            return net
    raise BpfkitError("no free /30 subnet found in 10.200.0.0/13 for a veth pair")


class VethPair:
    """A veth pair: ``host`` end in the current netns, ``peer`` end in a fresh netns.

    Both ends get an IPv4 address and are up (as is ``lo`` in the new namespace).  On exit
    the host end is deleted (which deletes its peer) and the namespace is removed, so
    nothing is left behind.  Attributes: ``host``, ``peer`` (names), ``host_index``,
    ``peer_index``, ``host_ip``, ``peer_ip`` (strings), ``ns`` (:class:`NetNS`).
    """

    def __init__(self, host: str | None = None, peer: str | None = None, *,
                 host_addr: str | None = None, peer_addr: str | None = None,
                 ns: NetNS | None = None) -> None:
        n = next(_counter)
        tag = f"bk{os.getpid() % 1000000}x{n % 1000}"
        self.host = host or f"{tag}h"
        self.peer = peer or f"{tag}p"
        self._host_addr = host_addr
        self._peer_addr = peer_addr
        self._given_ns = ns
        self.ns: NetNS | None = None
        self._home_fd = -1
        self.host_index = 0
        self.peer_index = 0
        self.host_ip = ""
        self.peer_ip = ""
        self._made = False

    def open(self) -> VethPair:
        self._home_fd = open_netns(None)
        self.ns = self._given_ns or NetNS.create()
        try:
            with netlink.Netlink() as nl:
                if self._host_addr is None or self._peer_addr is None:
                    used = [ipaddress.ip_interface(f"{a.address}/{a.prefixlen}").network
                            for a in nl.addrs()]
                    net = _pick_subnet(used)
                    hosts = list(net.hosts())
                    self._host_addr = self._host_addr or f"{hosts[0]}/30"
                    self._peer_addr = self._peer_addr or f"{hosts[1]}/30"
                nsfd = self.ns.open()
                try:
                    nl.veth_add(self.host, self.peer, peer_netns_fd=nsfd)
                finally:
                    os.close(nsfd)
                self._made = True
                self.host_index = nl.ifindex(self.host)
                nl.addr_add(self.host_index, self._host_addr)
                nl.link_set(self.host_index, up=True)
            with netlink.Netlink(self.ns) as nl:
                self.peer_index = nl.ifindex(self.peer)
                nl.addr_add(self.peer_index, self._peer_addr)
                nl.link_set(self.peer_index, up=True)
                nl.link_set(nl.ifindex("lo"), up=True)
        except BaseException:
            self.close()
            raise
        self.host_ip = str(ipaddress.ip_interface(self._host_addr).ip)
        self.peer_ip = str(ipaddress.ip_interface(self._peer_addr).ip)
        return self

    def close(self) -> None:
        """Delete the pair and the namespace we created; safe to call twice."""
        try:
            if self._made:
                self._made = False
                with netlink.Netlink(self._home_fd if self._home_fd >= 0 else None) as nl:
                    try:
                        nl.link_del(nl.ifindex(self.host))
                    except NotFound:
                        pass
        finally:
            if self._home_fd >= 0:
                os.close(self._home_fd)
                self._home_fd = -1
            if self.ns is not None and self._given_ns is None:
                self.ns.close()

    def __enter__(self) -> VethPair:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<VethPair {self.host}({self.host_ip}) <-> {self.peer}({self.peer_ip}) "
                f"in {self.ns!r}>")
