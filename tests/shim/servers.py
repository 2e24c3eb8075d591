#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Small servers for the shim suites (tests/shim/helpers.bash starts them in a namespace).

  servers.py echo PORT [LOG]  TCP and UDP echo on [::]:PORT (IPv4 too). TCP echoes bytes
                              until the peer closes; UDP answers each datagram with one
                              datagram of the same bytes. LOG gets a line per datagram:
                              "udp LEN FROM-ADDR FROM-PORT".
  servers.py sink PORT DIR    TCP: each connection's bytes go to DIR/tcp-N.part, renamed to
                              DIR/tcp-N once the peer has closed. UDP: each datagram is
                              written to DIR/udp-N.

Both print "ready" once their sockets are bound and listening.
"""
import os
import socket
import sys
import threading

counter_lock = threading.Lock()
counter = {"tcp": 0, "udp": 0}


def next_name(kind):
    with counter_lock:
        n = counter[kind]
        counter[kind] += 1
    return f"{kind}-{n}"


def bound(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    return s


def serve_tcp(port, handler):
    lsock = bound(socket.SOCK_STREAM, port)
    lsock.listen(512)

    def loop():
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def tcp_echo(conn):
    with conn:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def udp_echo(port, log):
    s = bound(socket.SOCK_DGRAM, port)
    out = open(log, "a", buffering=1) if log else None
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(65536)
        if out:
            out.write(f"udp {len(data)} {addr[0]} {addr[1]}\n")
        s.sendto(data, addr)


def tcp_sink(directory):
    def handler(conn):
        name = os.path.join(directory, next_name("tcp"))
        with conn, open(name + ".part", "wb") as f:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    f.write(data)
            except OSError as e:
                f.write(f"\n[sink: {e}]".encode())
        os.rename(name + ".part", name)

    return handler


def udp_sink(port, directory):
    s = bound(socket.SOCK_DGRAM, port)
    print("ready", flush=True)
    while True:
        data, _ = s.recvfrom(65536)
        name = os.path.join(directory, next_name("udp"))
        with open(name + ".part", "wb") as f:
            f.write(data)
        os.rename(name + ".part", name)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("echo", "sink"):
        sys.exit(__doc__)
    port = int(sys.argv[2])
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    if sys.argv[1] == "echo":
        serve_tcp(port, tcp_echo)
        udp_echo(port, arg)
    else:
        os.makedirs(arg, exist_ok=True)
        serve_tcp(port, tcp_sink(arg))
        udp_sink(port, arg)


if __name__ == "__main__":
    main()
