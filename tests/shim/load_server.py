#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP line echo server for the load suite (tests/shim/120-load.bats) that holds
thousands of connections at once: one thread and a selector, not a thread per
connection as servers.py's echo, and a descriptor limit raised to its hard limit.

  load_server.py PORT   echo on [::]:PORT (IPv4 too); a peer's EOF is answered with
                        EOF once everything before it was echoed. Prints "ready".
"""
import resource
import selectors
import socket
import sys


def listener(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(4096)
    s.setblocking(False)
    return s


def serve(port):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    lsock = listener(port)
    sel.register(lsock, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is lsock:
                accept_all(lsock, sel)
            else:
                echo(key.fileobj, sel)


def accept_all(lsock, sel):
    while True:
        try:
            conn, _ = lsock.accept()
        except BlockingIOError:
            return
        # Lines are short: a blocking sendall of what one recv gave never waits long.
        conn.setblocking(True)
        sel.register(conn, selectors.EVENT_READ)


def echo(conn, sel):
    try:
        data = conn.recv(65536)
        if data:
            conn.sendall(data)
            return
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sel.unregister(conn)
    conn.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
