"""Packet builders for testing XDP, tc and socket programs with BPF_PROG_TEST_RUN.

Why our own (no scapy): the standard library is enough to build the few headers BPF
programs parse, and tests then run anywhere bpfkit runs.  Checksums are correct (IPv4
header, TCP/UDP with the IPv4 or IPv6 pseudo-header), so programs that verify or
rewrite them see what a real stack would send.

    frame = udp_packet("10.0.0.1", "10.0.0.2", 1234, 53, b"query")
    info = parse(frame)      # {"eth": {...}, "ip": {...}, "udp": {...}, "payload": b"query"}
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from ..errors import ParseError

__all__ = ["ETH_P_IP", "ETH_P_IPV6", "ETH_P_ARP", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_ICMP",
           "checksum", "mac", "ethernet", "ipv4", "ipv6", "udp", "tcp", "udp_packet",
           "tcp_packet", "parse", "PacketError"]

ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q = 0x0800, 0x86DD, 0x0806, 0x8100
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
             "C": 0x80}
DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"


class PacketError(ParseError):
    """A packet that cannot be built or parsed."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(addr: str | bytes) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (or 6 bytes) -> 6 bytes."""
    if isinstance(addr, (bytes, bytearray)):
        if len(addr) != 6:
            raise PacketError(f"a MAC address is 6 bytes, got {len(addr)}")
        return bytes(addr)
    parts = addr.replace("-", ":").split(":")
    try:
        b = bytes(int(p, 16) for p in parts)
    except ValueError:
        b = b""
    if len(b) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise PacketError(f"bad MAC address {addr!r}")
    return b


def ethernet(payload: bytes, ethertype: int, src: str | bytes = DEFAULT_SRC_MAC,
             dst: str | bytes = DEFAULT_DST_MAC, vlan: int | None = None) -> bytes:
    """An Ethernet II frame (no FCS), optionally 802.1Q-tagged."""
    head = mac(dst) + mac(src)
    if vlan is not None:
        head += struct.pack("!HH", ETH_P_8021Q, vlan & 0x0FFF)
    return head + struct.pack("!H", ethertype) + payload


def _ip(addr: str | bytes, version: int | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        a = ipaddress.ip_address(addr)
    except ValueError as e:
        raise PacketError(str(e)) from None
    if version is not None and a.version != version:
        raise PacketError(f"{a} is not an IPv{version} address")
    return a


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0,
         tos: int = 0, dont_fragment: bool = True, options: bytes = b"") -> bytes:
    """An IPv4 header (checksum filled) + payload."""
    if len(options) % 4:
        raise PacketError("IPv4 options must be a multiple of 4 bytes")
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    if total > 0xFFFF:
        raise PacketError(f"IPv4 packet too long ({total} bytes)")
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ident,
                      0x4000 if dont_fragment else 0, ttl, proto, 0,
                      _ip(src, 4).packed, _ip(dst, 4).packed) + options
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, *, hop_limit: int = 64,
         traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """An IPv6 header + payload."""
    if len(payload) > 0xFFFF:
        raise PacketError(f"IPv6 payload too long ({len(payload)} bytes)")
    vtf = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB16s16s", vtf, len(payload), next_header, hop_limit,
                       _ip(src, 6).packed, _ip(dst, 6).packed) + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = _ip(src), _ip(dst)
    if s.version != d.version:
        raise PacketError(f"{s} and {d} are not the same IP version")
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, proto, length)
    return s.packed + d.packed + struct.pack("!IxxxB", length, proto)


def udp(sport: int, dport: int, payload: bytes, *, src: str, dst: str) -> bytes:
    """A UDP header + payload, checksummed over the pseudo-header of ``src``/``dst``."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    c = checksum(_pseudo(src, dst, IPPROTO_UDP, length) + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


def tcp(sport: int, dport: int, payload: bytes = b"", *, src: str, dst: str, flags: str = "S",
        seq: int = 0, ack: int = 0, window: int = 65535, options: bytes = b"") -> bytes:
    """A TCP header + payload; ``flags`` is letters from FSRPAUEC (e.g. ``"SA"``)."""
    if len(options) % 4:
        raise PacketError("TCP options must be a multiple of 4 bytes")
    bits = 0
    for f in flags.upper():
        if f not in TCP_FLAGS:
            raise PacketError(f"unknown TCP flag {f!r} (use FSRPAUEC)")
        bits |= TCP_FLAGS[f]
    off = 5 + len(options) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      off << 4, bits, window, 0, 0) + options
    c = checksum(_pseudo(src, dst, IPPROTO_TCP, len(hdr) + len(payload)) + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def _l3(src: str, dst: str, proto: int, l4: bytes, **ip_kw: Any) -> tuple[bytes, int]:
    if _ip(src).version == 4:
        return ipv4(src, dst, proto, l4, **ip_kw), ETH_P_IP
    return ipv6(src, dst, proto, l4, **ip_kw), ETH_P_IPV6


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *,
               src_mac: str | bytes = DEFAULT_SRC_MAC, dst_mac: str | bytes = DEFAULT_DST_MAC,
               **ip_kw: Any) -> bytes:
    """An Ethernet frame carrying UDP over IPv4 or IPv6 (by the address family)."""
    l3, et = _l3(src, dst, IPPROTO_UDP, udp(sport, dport, payload, src=src, dst=dst), **ip_kw)
    return ethernet(l3, et, src_mac, dst_mac)


def tcp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *,
               flags: str = "S", seq: int = 0, ack: int = 0, window: int = 65535,
               src_mac: str | bytes = DEFAULT_SRC_MAC, dst_mac: str | bytes = DEFAULT_DST_MAC,
               **ip_kw: Any) -> bytes:
    """An Ethernet frame carrying TCP over IPv4 or IPv6 (by the address family)."""
    seg = tcp(sport, dport, payload, src=src, dst=dst, flags=flags, seq=seq, ack=ack,
              window=window)
    l3, et = _l3(src, dst, IPPROTO_TCP, seg, **ip_kw)
    return ethernet(l3, et, src_mac, dst_mac)


def parse(frame: bytes) -> dict[str, Any]:
    """Decode an Ethernet frame's headers (to check what a program rewrote)."""
    out: dict[str, Any] = {}
    try:
        dst, src, et = struct.unpack_from("!6s6sH", frame)
        off = 14
        if et == ETH_P_8021Q:
            tci, et = struct.unpack_from("!HH", frame, off)
            out["vlan"] = tci & 0x0FFF
            off += 4
        out["eth"] = {"dst": dst.hex(":"), "src": src.hex(":"), "type": et}
        proto = None
        src_ip = dst_ip = ""
        if et == ETH_P_IP:
            vihl, tos, total, ident, frag, ttl, proto, csum, s, d = struct.unpack_from(
                "!BBHHHBBH4s4s", frame, off)
            ihl = (vihl & 0xF) * 4
            if vihl >> 4 != 4 or ihl < 20:
                raise PacketError("not an IPv4 header")
            src_ip, dst_ip = str(ipaddress.IPv4Address(s)), str(ipaddress.IPv4Address(d))
            out["ip"] = {"version": 4, "src": src_ip, "dst": dst_ip, "proto": proto, "ttl": ttl,
                         "len": total, "checksum_ok": checksum(frame[off:off + ihl]) == 0}
            end = off + total
            off += ihl
        elif et == ETH_P_IPV6:
            vtf, plen, proto, hlim, s, d = struct.unpack_from("!IHBB16s16s", frame, off)
            src_ip, dst_ip = str(ipaddress.IPv6Address(s)), str(ipaddress.IPv6Address(d))
            out["ip"] = {"version": 6, "src": src_ip, "dst": dst_ip, "proto": proto,
                         "hop_limit": hlim, "len": plen}
            off += 40
            end = off + plen
        else:
            out["payload"] = frame[off:]
            return out
        seg = frame[off:end]
        if proto == IPPROTO_UDP:
            sp, dp, ln, _c = struct.unpack_from("!HHHH", seg)
            out["udp"] = {"sport": sp, "dport": dp, "len": ln, "checksum_ok":
                          checksum(_pseudo(src_ip, dst_ip, IPPROTO_UDP, len(seg)) + seg) == 0}
            out["payload"] = seg[8:ln]
        elif proto == IPPROTO_TCP:
            sp, dp, seq, ack, offb, bits, win = struct.unpack_from("!HHIIBBH", seg)
            flags = "".join(f for f, b in TCP_FLAGS.items() if bits & b)
            out["tcp"] = {"sport": sp, "dport": dp, "seq": seq, "ack": ack, "flags": flags,
                          "window": win, "checksum_ok":
                          checksum(_pseudo(src_ip, dst_ip, IPPROTO_TCP, len(seg)) + seg) == 0}
            out["payload"] = seg[(offb >> 4) * 4:]
        else:
            out["payload"] = seg
    except struct.error as e:
        raise PacketError(f"truncated packet ({len(frame)} bytes): {e}") from None
    return out
