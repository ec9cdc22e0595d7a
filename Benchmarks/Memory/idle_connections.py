"""What an idle HTTP/2 connection costs a server: opens N connections that complete the HTTP/2 handshake
(preface, SETTINGS, SETTINGS ack) and then stay idle, and reports the server's RSS growth per connection.

Usage: python3 Benchmarks/Memory/idle_connections.py [--connections N] NAME=COMMAND...
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


def measure(name, command, count):
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
        for s in warm:
            s.close()
        per = (after - before) * 1024 / count
        print(f"| {name} | {count} | {before:,} KiB | {after:,} KiB | {per / 1024:.1f} KiB |", flush=True)
    finally:
        for s in sockets:
            s.close()
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 256)), hard))
    print("| server | idle connections | RSS before | RSS after | per connection |")
    print("|---|---|---|---|---|")
    for spec in args.servers:
        name, command = spec.split("=", 1)
        measure(name, command, args.connections)


if __name__ == "__main__":
    main()
