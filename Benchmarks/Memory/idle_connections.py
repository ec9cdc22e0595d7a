"""What an idle HTTP/2 connection costs a server: opens N connections that complete the HTTP/2 handshake
(preface, SETTINGS, SETTINGS ack) and then stay idle, and reports the server's RSS growth per connection:
1 s after the last handshake, and again after --settle seconds in all (a server may give memory back
once a connection has been quiet a while: Courier does after 1–2 s, see `releaseIdleBuffersAfter`).

Usage: python3 Benchmarks/Memory/idle_connections.py [--connections N] [--settle S] NAME=COMMAND...
COMMAND contains {PORT}; each server runs pinned to core 0. Needs `ulimit -n` above N.
"""
import argparse
import os
import resource
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Compare"))
from compare import start_server  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def handshake(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(PREFACE + SETTINGS)
    # Read the server's SETTINGS (and whatever else it sends first), then ack it.
    s.recv(4096)
    s.sendall(SETTINGS_ACK)
    return s


def measure(name, command, count, settle):
    server, port = start_server(name, command)
    sockets = []
    try:
        # Warm up: a few connections first, so one-time allocations are not counted.
        warm = [handshake(port) for _ in range(16)]
        time.sleep(0.5)
        before = rss_kib(server.pid)
        for _ in range(count):
            sockets.append(handshake(port))
        time.sleep(1)
        after = rss_kib(server.pid)
        time.sleep(max(0, settle - 1))
        settled = rss_kib(server.pid)
        for s in warm:
            s.close()
        per = (after - before) / count
        per_settled = (settled - before) / count
        print(
            f"| {name} | {count} | {before:,} KiB | {after:,} KiB | {per:.1f} KiB | {settled:,} KiB | {per_settled:.1f} KiB |",
            flush=True,
        )
    finally:
        for s in sockets:
            s.close()
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=3, help="seconds after the last handshake (>= 1)")
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 256)), hard))
    print(
        f"| server | idle connections | RSS before | RSS after 1 s | per connection after 1 s "
        f"| RSS after {args.settle:g} s | per connection after {args.settle:g} s |"
    )
    print("|---|---|---|---|---|---|---|")
    for spec in args.servers:
        name, command = spec.split("=", 1)
        measure(name, command, args.connections, max(1, args.settle))


if __name__ == "__main__":
    main()
