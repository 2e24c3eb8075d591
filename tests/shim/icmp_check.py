#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ICMP sockets as a program that opens them itself sees them (tests/shim/130-icmp.bats).

  icmp_check.py ping ADDR [ADDR6]   ping sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6): three
                                    echo requests each; the replies carry the socket's
                                    identifier (its port, not the one sent), the sequence
                                    numbers and data sent, and IP_TTL / IPV6_HOPLIMIT as
                                    ancillary data; recvfrom names the address pinged
  icmp_check.py raw ADDR            a raw socket of another protocol (UDP, then TCP)
                                    sending to ADDR: prints "raw-udp ERRNO-NAME", ...
  icmp_check.py udp ADDR PORT       a connected UDP socket sends to a closed port and
                                    is already blocked in recv when the port
                                    unreachable comes back: prints what that recv
                                    gave, then what poll and a second recv give;
                                    then SO_ERROR on a second socket once it polls
                                    ready
  icmp_check.py recverr ADDR PORT   a connected UDP socket with IP_RECVERR (or
                                    IPV6_RECVERR), set before the connect and after
                                    it, sends to a closed port: prints the error queue's
                                    entry (struct sock_extended_err, the offender, the
                                    name and the quoted payload), then what a second
                                    MSG_ERRQUEUE and a recv give

Exits 0 when every check held, 1 with the reason otherwise.
"""
import errno
import os
import select
import socket
import struct
import sys

# Linux's numbers (not every Python names them).
IP_TTL, IP_RECVTTL = 2, 12
IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 51, 52


def fail(why):
    print(why)
    sys.exit(1)


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo(family, ident, seq, data):
    t = 8 if family == socket.AF_INET else 128
    hdr = struct.pack("!BBHHH", t, 0, 0, ident, seq)
    return hdr[:2] + struct.pack("!H", checksum(hdr + data)) + hdr[4:] + data


def ping_family(family, addr):
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    s = socket.socket(family, socket.SOCK_DGRAM, proto)
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        want_cmsg = (socket.IPPROTO_IP, IP_TTL)
        reply_type = 0
    else:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        want_cmsg = (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)
        reply_type = 129
    sent_id = 0x4242
    for seq in (1, 2, 3):
        data = b"icmp-check %d %s" % (seq, os.urandom(8).hex().encode())
        s.sendto(echo(family, sent_id, seq, data), (addr, 0))
        port = s.getsockname()[1]
        while True:
            r, _, _ = select.select([s], [], [], 3)
            if not r:
                fail("%s seq %d: no reply within 3 s" % (addr, seq))
            msg, anc, _, src = s.recvmsg(2048, socket.CMSG_SPACE(4) * 4)
            if msg[0] == reply_type and struct.unpack("!H", msg[6:8])[0] == seq:
                break
        typ, code, _, ident, rseq = struct.unpack("!BBHHH", msg[:8])
        if ident != port:
            fail("%s: reply identifier %d, the socket's port is %d" % (addr, ident, port))
        if ident == sent_id and port != sent_id:
            fail("%s: the identifier was not rewritten" % addr)
        if msg[8:] != data:
            fail("%s seq %d: the data came back changed" % (addr, seq))
        if socket.inet_pton(family, src[0]) != socket.inet_pton(family, addr):
            fail("%s: recvfrom named %s" % (addr, src[0]))
        ttls = [struct.unpack("i", d[:4])[0] for lv, ty, d in anc if (lv, ty) == want_cmsg]
        if not ttls or not 0 < ttls[0] <= 255:
            fail("%s: no TTL/hop limit in the ancillary data: %r" % (addr, anc))
        print("%s reply id=%d seq=%d ttl=%d" % (addr, ident, rseq, ttls[0]))
    s.close()


def raw_other(addr):
    for name, proto in (("raw-udp", socket.IPPROTO_UDP), ("raw-tcp", socket.IPPROTO_TCP)):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
        try:
            s.sendto(b"\0" * 8 + b"icmp-marker", (addr, 0))
            print(name, "sent")
        except OSError as e:
            print(name, errno.errorcode.get(e.errno, e.errno))
        s.close()


def outcome(f):
    try:
        f()
        return "data"
    except socket.timeout:
        return "timeout"
    except BlockingIOError:
        return "timeout"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def udp_refused(addr, port):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, port))
    # SO_RCVTIMEO, not settimeout: a plain blocking recv (python would poll first).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 0))
    s.send(b"icmp-check udp")
    first = outcome(lambda: s.recv(2048))
    # Linux reports the error once: nothing is pending any more.
    p = select.poll()
    p.register(s, select.POLLIN)
    polled = "readable" if p.poll(0) else "quiet"
    s.settimeout(0.3)
    second = outcome(lambda: s.recv(2048))
    print("recv %s, then poll %s, recv %s" % (first, polled, second))
    # The same error read as SO_ERROR once the socket is ready: the recv after it waits.
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, port))
    s.send(b"icmp-check udp")
    p = select.poll()
    p.register(s, select.POLLIN)
    ready = "ready" if p.poll(3000) else "quiet"
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    s.settimeout(0.3)
    print("poll %s, SO_ERROR %s, recv %s" % (ready, errno.errorcode.get(err, str(err)),
                                             outcome(lambda: s.recv(2048))))


SO_EE_ORIGIN = {1: "local", 2: "icmp", 3: "icmp6"}


def sockaddr_of(b):
    family = struct.unpack_from("=H", b)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, b[4:8])
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, b[8:24])
    return "none"


def errqueue_entry(s, level, opt, addr, port, sent):
    try:
        data, anc, flags, name = s.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    ee = [c for c in anc if c[0] == level and c[1] == opt]
    if len(ee) != 1:
        return "no extended error in %r" % (anc,)
    err, origin, typ, code, _pad, info, edata = struct.unpack_from("=IBBBBII", ee[0][2])
    offender = sockaddr_of(ee[0][2][16:])
    return "errno=%s origin=%s type=%d code=%d info=%d data=%d offender=%s name=%s " \
        "payload=%s flags=%s" % (
            errno.errorcode.get(err, str(err)), SO_EE_ORIGIN.get(origin, origin), typ, code,
            info, edata, "dst" if offender == addr else offender,
            "dst" if name[:2] == (addr, port) else repr(name),
            "sent" if data == sent else repr(data),
            "ERRQUEUE" if flags == socket.MSG_ERRQUEUE else hex(flags))


def udp_recverr(addr, port):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    level, opt = (41, 25) if family == socket.AF_INET6 else (0, 11)  # IP(V6)_RECVERR
    for when in ("before", "after"):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if when == "before":
            s.setsockopt(level, opt, 1)
        s.connect((addr, port))
        if when == "after":
            s.setsockopt(level, opt, 1)
        sent = b"icmp-check recverr " + when.encode()
        s.send(sent)
        # The kernel's socket polls POLLERR; the library's readable (its error comes
        # through the data path): either wakes poll.
        p = select.poll()
        p.register(s, select.POLLIN)
        ready = "ready" if p.poll(3000) else "quiet"
        entry = errqueue_entry(s, level, opt, addr, port, sent)
        again = errqueue_entry(s, level, opt, addr, port, sent)
        s.settimeout(0.3)
        print("%s connect: poll %s, errqueue %s; errqueue again %s, recv %s" % (
            when, ready, entry, again, outcome(lambda: s.recv(2048))))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "ping":
        for a in sys.argv[2:]:
            ping_family(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
    elif len(sys.argv) == 3 and sys.argv[1] == "raw":
        raw_other(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "udp":
        udp_refused(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "recverr":
        udp_recverr(sys.argv[2], int(sys.argv[3]))
    else:
        fail(__doc__)


main()
