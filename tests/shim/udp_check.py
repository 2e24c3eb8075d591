#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""UDP through the shim, checked against the kernel's semantics with the socket module.
Every DEST is a UDP echo server (tests/shim/servers.py echo) given as ADDR PORT.

  udp_check.py connected ADDR PORT
      a connected socket: datagram boundaries (1, 500, 1400 bytes each come back alone),
      a short recv truncates one datagram and drops its rest, send after connect to the
      same peer only, getpeername.
  udp_check.py mixed ADDR PORT [ADDR PORT ...]
      one unconnected socket (the family of the first ADDR; give v4-mapped addresses for
      IPv4 on an IPv6 socket) talks to every DEST at once: recvfrom reports each echo's
      source as the address it was sent to; MSG_PEEK returns the next datagram and its
      source without consuming it; MSG_TRUNC makes recv return the full length and sets
      the flag in recvmsg; FIONREAD is the next datagram's size; read() returns the
      payload alone. Prints "OK port N", N the socket's own port (getsockname).

Exits 1 with "udp_check STEP: expected X, got Y" at the first difference.
"""
import array
import fcntl
import os
import select
import socket
import sys
import termios

TIMEOUT_S = 10


def fail(step, expected, got):
    sys.exit(f"udp_check {step}: expected {expected!r}, got {got!r}")


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def dest(family, addr, port):
    return (addr, port) if family == socket.AF_INET else (addr, port, 0, 0)


def same_source(family, got, want):
    # AF_INET6 addresses come back as (host, port, flowinfo, scope_id).
    return got[:2] == want[:2] if family == socket.AF_INET6 else got == want


def wait_readable(s, step):
    if not select.select([s], [], [], TIMEOUT_S)[0]:
        fail(step, "a datagram within %d s" % TIMEOUT_S, "nothing")


def connected(addr, port):
    s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT_S)
    s.connect((addr, port))
    if s.getpeername()[:2] != (addr, port):
        fail("getpeername", (addr, port), s.getpeername())
    sizes = [1, 500, 1400]
    for n in sizes:
        s.send(bytes([65 + n % 26]) * n)
    for n in sizes:
        got = s.recv(65536)
        if got != bytes([65 + n % 26]) * n:
            fail("boundaries", f"one datagram of {n} bytes", f"{len(got)} bytes")
    s.send(b"0123456789" * 50)
    s.send(b"next")
    got = s.recv(10)
    if got != b"0123456789":
        fail("short recv", b"0123456789", got)
    got = s.recv(65536)
    if got != b"next":
        fail("after a short recv (the rest of the datagram is dropped)", b"next", got)
    print("OK")


def exchange(s, family, to, payload, step):
    s.sendto(payload, to)
    data, src = s.recvfrom(65536)
    if data != payload:
        fail(step + ": echo", payload[:40], data[:40])
    if not same_source(family, src, to):
        fail(step + ": source", to, src)


def all_at_once(s, family, dests):
    want = {}
    for i, to in enumerate(dests):
        payload = f"all at once #{i} to {to[0]}".encode()
        want[payload] = to
        s.sendto(payload, to)
    while want:
        data, src = s.recvfrom(65536)
        if data not in want:
            fail("all at once", "one of the datagrams sent", data)
        if not same_source(family, src, want[data]):
            fail("all at once: source", want[data], src)
        del want[data]


def peek(s, family, to):
    payload = f"peek at {to[0]}".encode()
    s.sendto(payload, to)
    wait_readable(s, "MSG_PEEK")
    data, src = s.recvfrom(65536, socket.MSG_PEEK)
    if data != payload or not same_source(family, src, to):
        fail("MSG_PEEK", (payload, to), (data, src))
    data2, src2 = s.recvfrom(65536)
    if (data2, src2[:2]) != (data, src[:2]):
        fail("recvfrom after MSG_PEEK (the same datagram)", (data, src), (data2, src2))


def trunc(s, family, to):
    payload = bytes(range(256)) * 4
    s.sendto(payload, to)
    wait_readable(s, "MSG_TRUNC")
    n = s.recv_into(bytearray(10), 10, socket.MSG_TRUNC | socket.MSG_PEEK)
    if n != len(payload):
        fail("recv MSG_TRUNC|MSG_PEEK return value", len(payload), n)
    data, _, flags, src = s.recvmsg(10)
    if data != payload[:10] or not flags & socket.MSG_TRUNC:
        fail("recvmsg into 10 bytes", (payload[:10], "MSG_TRUNC set"),
             (data, "MSG_TRUNC set" if flags & socket.MSG_TRUNC else "no MSG_TRUNC"))
    if not same_source(family, src, to):
        fail("recvmsg source", to, src)


def fionread(s, to):
    s.sendto(b"f" * 777, to)
    wait_readable(s, "FIONREAD")
    buf = array.array("i", [0])
    fcntl.ioctl(s.fileno(), termios.FIONREAD, buf)
    if buf[0] != 777:
        fail("FIONREAD (the next datagram's size)", 777, buf[0])
    s.recv(65536)


def plain_read(s, to):
    payload = f"read() from {to[0]}".encode()
    s.sendto(payload, to)
    wait_readable(s, "read")
    got = os.read(s.fileno(), 65536)
    if got != payload:
        fail("read() (the payload alone)", payload, got)


def mixed(args):
    family = family_of(args[0])
    dests = [dest(family, args[i], int(args[i + 1])) for i in range(0, len(args), 2)]
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT_S)
    all_at_once(s, family, dests)
    for to in dests:
        exchange(s, family, to, f"one by one to {to[0]}".encode(), f"exchange with {to[0]}")
        peek(s, family, to)
        trunc(s, family, to)
        fionread(s, to)
        plain_read(s, to)
    print("OK port", s.getsockname()[1])


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "connected":
        connected(a[1], int(a[2]))
    elif len(a) >= 3 and a[0] == "mixed" and len(a) % 2 == 1:
        mixed(a[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
