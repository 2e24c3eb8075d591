#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program written the way event loops are: non-blocking connects watched with the
selectors module (epoll underneath), SO_ERROR read when the socket turns writable.

  nb_selectors.py echo N ADDR PORT [ADDR PORT ...]
      N connections to each line echo server at once, in one loop; each sends its own
      line and must get exactly that line back. Prints "OK N connections".
  nb_selectors.py refused ADDR PORT
      connect_ex gives EINPROGRESS, the socket turns writable, SO_ERROR is ECONNREFUSED.
      Prints "OK refused".

Exits 1 with a message saying what was expected and what came back.
"""
import errno
import selectors
import socket
import sys
import time

DEADLINE_S = 20


def fail(msg):
    sys.exit(f"nb_selectors: {msg}")


def start(addr, port):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex((addr, port))
    if rc != errno.EINPROGRESS:
        fail(f"connect_ex to {addr} port {port}: expected EINPROGRESS, got "
             f"{errno.errorcode.get(rc, rc)}")
    return s


class Conn:
    def __init__(self, sock, line):
        self.sock = sock
        self.out = line
        self.want = line
        self.got = b""
        self.connected = False


def on_event(sel, c, mask):
    if not c.connected:
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            fail(f"connection {c.want[:-1]!r}: SO_ERROR {errno.errorcode.get(err, err)}")
        c.connected = True
    if mask & selectors.EVENT_WRITE and c.out:
        c.out = c.out[c.sock.send(c.out):]
        if not c.out:
            sel.modify(c.sock, selectors.EVENT_READ, c)
        return False
    if mask & selectors.EVENT_READ:
        data = c.sock.recv(65536)
        if not data:
            fail(f"connection {c.want[:-1]!r}: EOF after {c.got!r}")
        c.got += data
        if c.got.endswith(b"\n"):
            if c.got != c.want:
                fail(f"echo: sent {c.want!r}, got back {c.got!r}")
            sel.unregister(c.sock)
            c.sock.close()
            return True
    return False


def echo(n, targets):
    sel = selectors.DefaultSelector()
    conns = []
    for addr, port in targets:
        for i in range(n):
            line = f"connection {i} to {addr} port {port}\n".encode()
            c = Conn(start(addr, port), line)
            sel.register(c.sock, selectors.EVENT_WRITE, c)
            conns.append(c)
    left = len(conns)
    deadline = time.monotonic() + DEADLINE_S
    while left:
        events = sel.select(timeout=max(0, deadline - time.monotonic()))
        if not events:
            fail(f"{left} of {len(conns)} connections unfinished after {DEADLINE_S} s")
        for key, mask in events:
            if on_event(sel, key.data, mask):
                left -= 1
    print(f"OK {len(conns)} connections")


def refused(addr, port):
    sel = selectors.DefaultSelector()
    s = start(addr, port)
    sel.register(s, selectors.EVENT_WRITE)
    if not sel.select(timeout=DEADLINE_S):
        fail(f"no event within {DEADLINE_S} s")
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != errno.ECONNREFUSED:
        fail(f"SO_ERROR: expected ECONNREFUSED, got {errno.errorcode.get(err, err)}")
    print("OK refused")


def main():
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "echo" and len(a) % 2 == 0:
        echo(int(a[1]), [(a[i], int(a[i + 1])) for i in range(2, len(a), 2)])
    elif len(a) == 3 and a[0] == "refused":
        refused(a[1], int(a[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
