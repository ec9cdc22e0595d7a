"""Cold start: the time from exec to the first successful RPC (a grpc.health.v1.Health/Check), as Knative
users see it when a service scales from zero.

Usage: python3 cold_start.py [--runs N] NAME=COMMAND [NAME=COMMAND ...]
Each COMMAND is run with PORT set to a free port, pinned to core 0 (taskset); the prober runs on core 1. It
tries to connect in a tight loop, then sends one health check over HTTP/2 (Python h2) and stops the clock at
grpc-status 0. Prints the median, min and max per server over N runs (default 20), interleaving servers.
"""
import argparse
import os
import shlex
import signal
import socket
import statistics
import subprocess
import time

import h2.config
import h2.connection
import h2.events

HEALTH_CHECK = b"\x00\x00\x00\x00\x00"  # an empty HealthCheckRequest: the whole server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_check(sock):
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers"),
    ])
    connection.send_data(stream, HEALTH_CHECK, end_stream=True)
    sock.sendall(connection.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed")
        for event in connection.receive_data(data):
            headers = getattr(event, "headers", None)
            if headers and isinstance(event, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                status = dict((k.decode() if isinstance(k, bytes) else k, v) for k, v in headers).get("grpc-status")
                if status is not None:
                    if status in ("0", b"0"):
                        return
                    raise RuntimeError(f"grpc-status {status}")
        pending = connection.data_to_send()
        if pending:
            sock.sendall(pending)


def one_run(command):
    port = free_port()
    env = dict(os.environ, PORT=str(port))
    argv = ["taskset", "-c", "0"] + [part.replace("{PORT}", str(port)) for part in shlex.split(command)]
    start = time.monotonic()
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = start + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command}: not listening after 10 s")
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            health_check(sock)
        return (time.monotonic() - start) * 1000
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    servers = [s.split("=", 1) for s in args.servers]
    times = {name: [] for name, _ in servers}
    for _ in range(args.runs):
        for name, command in servers:
            times[name].append(one_run(command))
    print(f"{'server':<24} {'median ms':>10} {'min':>8} {'max':>8}   (exec to first successful RPC, {args.runs} runs)")
    for name, values in times.items():
        print(f"{name:<24} {statistics.median(values):>10.2f} {min(values):>8.2f} {max(values):>8.2f}")


if __name__ == "__main__":
    main()
