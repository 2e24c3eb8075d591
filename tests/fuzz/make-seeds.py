#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (committed; run again
after changing a harness's input format). Seeds are small and valid, so fuzzing
starts deep: for fuzz_receive, scripts that reach every message type in each
handshake state; for fuzz_config, real wg-quick files; for fuzz_dns, answers of
every shape the parser reads, built to RFC 1035."""
import ipaddress
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_receive: [state] then records [kind|target|flags][len LE16][body] ----
(RAW, INIT_FORGED, INIT_REAL, RESP_FORGED, RESP_REAL, COOKIE_FORGED, COOKIE_REAL,
 DATA_FORGED, DATA_REAL, SEND, PUMP, CLOCK, CONNECT, FLOOD) = range(14)
TO_A, TO_B = 0x00, 0x10
OTHER_SRC, MACS, INDEX = 0x20, 0x40, 0x80


def rec(kind, to, body=b"", flags=0):
    return bytes([kind | to | flags]) + struct.pack("<H", len(body)) + body


def ipv4(src, dst, payload=8, total=None):
    n = 20 + payload
    h = bytearray(n)
    h[0] = 0x45
    struct.pack_into(">H", h, 2, n if total is None else total)
    h[8], h[9] = 64, 17
    h[12:16] = ipaddress.IPv4Address(src).packed
    h[16:20] = ipaddress.IPv4Address(dst).packed
    return bytes(h)


def ipv6(src, dst, payload=8, plen=None):
    h = bytearray(40 + payload)
    h[0] = 0x60
    struct.pack_into(">H", h, 4, payload if plen is None else plen)
    h[6], h[7] = 17, 64
    h[8:24] = ipaddress.IPv6Address(src).packed
    h[24:40] = ipaddress.IPv6Address(dst).packed
    return bytes(h)


def data(pick=0, delta=0, plain=b""):
    return bytes([pick]) + struct.pack("<h", delta) + plain


PUMP_ALL = struct.pack("<I", 0xffffffff)


def to_b(plain, flags=0, delta=0):
    """Data sealed by A's current keypair around plain, to B."""
    return rec(DATA_REAL, TO_B, data(0, delta, plain), flags)


def to_a(plain):
    return rec(DATA_REAL, TO_A, data(0, 0, plain))


def receive_seeds():
    v4_ab = ipv4("10.0.0.1", "10.0.0.2")
    s = {}
    for st in range(4):
        s[f"s{st}-raw-each-length"] = bytes([st]) + b"".join(
            rec(RAW, TO_B, struct.pack("<I", t) + bytes(n - 4))
            for t, n in ((1, 148), (2, 92), (3, 64), (4, 32), (4, 48)))
        s[f"s{st}-forged-handshakes"] = bytes([st]) + rec(INIT_FORGED, TO_B, bytes(148), MACS) + \
            rec(RESP_FORGED, TO_A, bytes(92), MACS | INDEX) + \
            rec(COOKIE_FORGED, TO_A, bytes(64), INDEX) + rec(DATA_FORGED, TO_B, bytes(40), INDEX)
    s["s0-initiation-from-a"] = b"\0" + rec(INIT_REAL, TO_B, bytes([0]) + b"\1\0\0\0" + b"\0\0") + \
        rec(PUMP, TO_B, PUMP_ALL)
    s["s0-initiation-from-c"] = b"\0" + rec(INIT_REAL, TO_B, bytes([1]) + b"\2\0\0\0" + b"\5\0")
    s["s0-initiation-replayed-time"] = b"\0" + rec(INIT_REAL, TO_B, b"\0\1\0\0\0\0\0") + \
        rec(INIT_REAL, TO_B, b"\0\2\0\0\0\3\0")
    s["s0-flood-then-cookie"] = b"\0" + rec(FLOOD, TO_B, b"\xc8\x80" + bytes(148)) + \
        rec(CONNECT, TO_A, b"\1") + rec(PUMP, TO_B, PUMP_ALL)
    s["s0-send-starts-handshake"] = b"\0" + rec(SEND, TO_A, ipv4("10.0.0.1", "10.0.0.2")) + \
        rec(PUMP, TO_A, PUMP_ALL)
    s["s1-response-real"] = b"\1" + rec(RESP_REAL, TO_A, b"\7\0\0\0")
    s["s1-response-real-corrupt"] = b"\1" + rec(RESP_REAL, TO_A, b"\7\0\0\0" + bytes(8) + b"\1")
    s["s1-cookie-real"] = b"\1" + rec(COOKIE_REAL, TO_A, b"\0" + bytes(6)) + \
        rec(CLOCK, TO_A, b"\1\6") + rec(PUMP, TO_A, PUMP_ALL)
    s["s1-cookie-real-v6"] = b"\1" + rec(COOKIE_REAL, TO_A, b"\2" + bytes(18))
    s["s1-retransmit"] = b"\1" + rec(PUMP, TO_A, b"\0\0\0\0") + rec(CLOCK, TO_A, b"\1\6")
    s["s2-data-promotes-next"] = b"\2" + to_b(v4_ab)
    s["s2-keepalive"] = b"\2" + to_b(b"")
    s["s3-data-a-to-b"] = b"\3" + to_b(v4_ab)
    s["s3-data-b-to-a-v6"] = b"\3" + to_a(ipv6("fd00::2", "fd00::1"))
    s["s3-data-net-behind-b"] = b"\3" + to_a(ipv4("10.9.1.2", "10.0.0.1"))
    s["s3-data-source-of-c"] = b"\3" + to_b(ipv4("10.0.0.5", "10.0.0.2"))
    s["s3-data-source-v6-of-c"] = b"\3" + to_b(ipv6("fd00::7", "fd00::2"))
    s["s3-data-padded"] = b"\3" + to_b(v4_ab + bytes(12))
    s["s3-data-short-length"] = b"\3" + to_b(ipv4("10.0.0.1", "10.0.0.2", 8, 60))
    s["s3-data-v6-short"] = b"\3" + to_a(ipv6("fd00::2", "fd00::1", 8, 400))
    s["s3-data-not-ip"] = b"\3" + to_b(b"\x55" * 40)
    s["s3-data-replay"] = b"\3" + to_b(v4_ab) + to_b(v4_ab, delta=-1)
    s["s3-data-far-counter"] = b"\3" + rec(DATA_REAL, TO_B, b"\0" + struct.pack("<Q", 1 << 40) +
                                           v4_ab, MACS)
    s["s3-data-roams"] = b"\3" + to_b(v4_ab, OTHER_SRC) + \
        rec(SEND, TO_B, ipv4("10.0.0.2", "10.0.0.1")) + rec(PUMP, TO_A, PUMP_ALL)
    s["s3-rekey-after-time"] = b"\3" + rec(CLOCK, TO_A, b"\2\2") + \
        rec(SEND, TO_A, ipv4("10.0.0.1", "10.0.0.2")) + rec(PUMP, TO_A, PUMP_ALL) + \
        rec(DATA_REAL, TO_A, data(1, 0, ipv4("10.0.0.2", "10.0.0.1")))
    s["s3-expired"] = b"\3" + rec(CLOCK, TO_A, b"\2\4") + \
        rec(DATA_REAL, TO_B, data(0, 0, ipv4("10.0.0.1", "10.0.0.2")))
    s["s3-initiation-during-session"] = b"\3" + rec(INIT_REAL, TO_B, b"\0\3\0\0\0\0\0") + \
        rec(DATA_REAL, TO_B, data(0, 0, ipv4("10.0.0.1", "10.0.0.2")))
    s["s3-send-b-to-c"] = b"\3" + rec(SEND, TO_B, ipv4("10.0.0.2", "10.0.0.7"))
    reject_after = (1 << 64) - 1 - (1 << 13)
    s["s3-counter-at-limit"] = b"\3" + \
        rec(DATA_REAL, TO_B, b"\0" + struct.pack("<Q", reject_after - 1) + v4_ab, MACS) + \
        rec(SEND, TO_A, ipv4("10.0.0.1", "10.0.0.2")) + rec(PUMP, TO_A, PUMP_ALL)
    s["s0-initiation-unknown-key"] = b"\0" + rec(INIT_REAL, TO_B, b"\2\4\0\0\0\0\0")
    s["s1-gives-up"] = b"\1" + rec(PUMP, TO_A, b"\0\0\0\0") + rec(CLOCK, TO_A, b"\2\2") + \
        rec(SEND, TO_A, ipv4("10.0.0.1", "10.0.0.2"))
    s["s3-keepalive-b-knows-a"] = bytes([3 | 0x04 | 0x08]) + rec(CLOCK, TO_A, b"\1\x1e") + \
        rec(PUMP, TO_A, PUMP_ALL)
    s["s3-psk"] = bytes([3 | 0x10]) + to_b(v4_ab) + \
        rec(INIT_REAL, TO_B, b"\0\5\0\0\0\0\0")
    # P_BIG|0x40: a size of 0x10000 - 256 + the next two bytes, the body repeated to fill it.
    for name, size in (("s3-data-largest", 65535 - 32), ("s3-data-one-too-large", 65535 - 31)):
        s[name] = b"\3" + rec(DATA_REAL, TO_B, bytes([0xc0]) + struct.pack("<h", 0) +
                              struct.pack("<H", size - (0x10000 - 256)) +
                              ipv6("fd00::1", "fd00::2", 65535 - 40 - 40)[:40])
    s["s0-no-source-address"] = b"\0" + rec(RAW, TO_B, struct.pack("<I", 1) + bytes(144), INDEX)
    return s


# ---- fuzz_config: real wg-quick files ----

PRIV = "QCTQ2HAduUSLmIcCWOOm2yZVwjrNbVnMXNnIoKoBTX4="
PEER1 = "KdDSQHLlMswPtfHwSaH8oiBL8t2n6vctGzXvSvssfEA="
PEER2 = "hglgWcmUjS7S8uUYUrtvnN7+vWKOR/SoMQkXJW10ClM="


def config_seeds():
    s = {}
    for name in ("wg0.conf", "provider-ipv6.conf"):
        with open(os.path.join(ROOT, "examples", name)) as f:
            s["example-" + name] = f.read()
    s["minimal"] = (f"[Interface]\nPrivateKey = {PRIV}\n"
                    f"[Peer]\nPublicKey = {PEER1}\nAllowedIPs = 10.0.0.0/24\n")
    s["provider-crlf-bom"] = (
        "\ufeff# generated\r\n[Interface]  # this device\r\n\tprivatekey=" + PRIV + "\r\n"
        "Address = 10.64.0.2/32, fd00:64::2/128\r\n"
        "DNS = 10.64.0.1, fd00:64::1, corp.example.com, lan.\r\n"
        "MTU = 1380\r\nListenPort = 51820\r\nTable = off\r\nFwMark = 0x1234\r\n"
        "PostUp = iptables -I OUTPUT ! -o %i -j REJECT\r\nSaveConfig = false\r\n\r\n"
        "[PEER]\r\nPUBLICKEY = " + PEER1 + "\r\nPresharedKey = " + PEER2 + "\r\n"
        "AllowedIPs = 0.0.0.0/0\r\nallowedips = ::/0 , 10.1.2.3 / 16\r\n"
        "Endpoint = [2001:db8::1]:51820\r\nPersistentKeepalive = 25\r\n\r\n"
        "[ Peer ]\r\nPublicKey = " + PEER2 + "\r\nEndpoint = vpn.example.com:443\r\n"
        "AllowedIPs = 192.168.0.0/16\r\nPersistentKeepalive = off\r\n")
    s["peers-first-bounds"] = (
        f"[Peer]\nPublicKey = {PEER2}\nAllowedIPs = 10.9.0.0/16\nEndpoint = 127.0.0.1:65535\n"
        f"PersistentKeepalive = 65535\n"
        f"[Interface]\nAddress = 10.0.0.2, fd00::2\nPrivateKey = {PRIV}\n"
        "MTU = 65535\nListenPort = 0\n"
        f"[Peer]\nPublicKey = {PEER1}\nAllowedIPs = 0.0.0.0/32, ::/128\n"
        "Endpoint = localhost:1\nPersistentKeepalive = 0\n")
    s["empty-lists"] = (f"[Interface]\nPrivateKey = {PRIV}\nAddress =\nDNS =\nMTU = 1280\n"
                        f"[Peer]\nPublicKey = {PEER1}\nAllowedIPs =")
    s["v4-mapped-and-zone"] = (
        f"[Interface]\nPrivateKey = {PRIV}\nAddress = ::ffff:10.0.0.2/128\nDNS = fe80::1%eth0\n"
        f"[Peer]\nPublicKey = {PEER1}\nEndpoint = [fe80::1%eth0]:51820\n"
        "AllowedIPs = ::ffff:0:0/96\n")
    s["errors"] = f"[Interface]\nPrivateKey = {PRIV}\nMTU = 99999\n"
    return s


# ---- fuzz_dns: answers to "host.tunnel.test" (the harness's question) ----

NAME = "host.tunnel.test"


def dname(n):
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def msg(flags, qd, an=(), ns=(), ar=(), ident=0x1234):
    hdr = struct.pack(">HHHHHH", ident, flags, len(qd), len(an), len(ns), len(ar))
    return hdr + b"".join(qd) + b"".join(an) + b"".join(ns) + b"".join(ar)


def q(n=NAME, t=1):
    return dname(n) + struct.pack(">HH", t, 1)


def rr(owner, t, rdata, cls=1):
    o = owner if isinstance(owner, bytes) else dname(owner)
    return o + struct.pack(">HHIH", t, cls, 300, len(rdata)) + rdata


PTR_Q = b"\xc0\x0c"   # the question's name, compressed
OK, NX, SERVFAIL, TC = 0x8180, 0x8183, 0x8182, 0x8380


def dns_seeds():
    a = ipaddress.IPv4Address("10.0.0.5").packed
    aaaa = ipaddress.IPv6Address("fd00::5").packed
    s = {}
    s["a-one"] = msg(OK, [q()], [rr(PTR_Q, 1, a)])
    s["a-two-uncompressed"] = msg(OK, [q()], [rr(NAME, 1, a), rr(NAME, 1, b"\x0a\0\0\6")])
    s["aaaa"] = msg(OK, [q(t=28)], [rr(PTR_Q, 28, aaaa)])
    s["cname-chain"] = msg(OK, [q()], [rr(PTR_Q, 5, b"\x03web" + b"\xc0\x11"),
                                       rr(dname("web.tunnel.test"), 5, dname("real.tunnel.test")),
                                       rr("real.tunnel.test", 1, a)])
    s["cname-loop"] = msg(OK, [q()], [rr(PTR_Q, 5, dname(NAME))])
    s["ptr"] = msg(OK, [q(t=12)], [rr(PTR_Q, 12, dname("box.tunnel.test"))])
    s["nxdomain-soa"] = msg(NX, [q()], [], [rr("tunnel.test", 6, dname("ns.tunnel.test") +
                                                dname("admin.tunnel.test") + bytes(20))])
    s["nodata"] = msg(OK, [q(t=28)], [rr(PTR_Q, 1, a)])
    s["servfail-no-question"] = msg(SERVFAIL, [])
    s["truncated"] = msg(TC, [q()])
    s["case-and-edns"] = msg(OK, [q("HoSt.TUNNEL.test")], [rr(PTR_Q, 1, a)],
                             ar=[b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)])
    s["bad-rdlen"] = msg(OK, [q()], [rr(PTR_Q, 1, a + b"\0")])
    s["other-class"] = msg(OK, [q()], [rr(PTR_Q, 1, a, cls=3)])
    s["escaped-label"] = msg(OK, [q()], [rr(PTR_Q, 5, b"\x03a.b\x02\\\\\0")])
    s["many-a"] = msg(OK, [q()], [rr(PTR_Q, 1, bytes([10, 0, 0, i])) for i in range(70)])
    return s


def main():
    for target, seeds in (("receive", receive_seeds()), ("config", config_seeds()),
                          ("dns", dns_seeds())):
        for name, data in seeds.items():
            write(target, name, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
