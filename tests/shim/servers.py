#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Small servers for the shim suites (tests/shim/helpers.bash starts them in a namespace).

  servers.py echo PORT [LOG]  TCP and UDP echo on [::]:PORT (IPv4 too). TCP echoes bytes
                              until the peer closes, and resets the connection when a
                              read brings exactly "RESET\n"; UDP answers each datagram with one
                              datagram of the same bytes. LOG gets a line per datagram:
                              "udp LEN FROM-ADDR FROM-PORT".
  servers.py sink PORT DIR    TCP: each connection's bytes go to DIR/tcp-N.part, renamed to
                              DIR/tcp-N once the peer has closed. UDP: each datagram is
                              written to DIR/udp-N.

  servers.py slowdns ADDR DELAY IP
                              A DNS server on UDP ADDR:53 that answers every A query
                              with IP, and every other query with no answer, each after
                              DELAY seconds (a slow resolver for Endpoint hostnames).

Each prints "ready" once its sockets are bound and listening.
"""
import os
import socket
import struct
import sys
import threading
import time

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
                if data == b"RESET\n":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    return
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


def dns_answer(query, ip):
    """The reply to QUERY (one question): IP for an A query, else no answer."""
    end = 12
    while query[end] != 0:
        end += 1 + query[end]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    question = query[12:end + 5]
    answers = b""
    if qtype == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    flags = 0x8180 | (struct.unpack("!H", query[2:4])[0] & 0x0100)
    head = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0)
    return head + question + answers


def slow_dns(addr, delay, ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    print("ready", flush=True)

    def answer(query, peer):
        time.sleep(delay)
        s.sendto(dns_answer(query, ip), peer)
        print(f"answered {peer[0]}:{peer[1]}", flush=True)

    while True:
        query, peer = s.recvfrom(512)
        threading.Thread(target=answer, args=(query, peer), daemon=True).start()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "slowdns":
        slow_dns(sys.argv[2], float(sys.argv[3]), sys.argv[4])
        return
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
