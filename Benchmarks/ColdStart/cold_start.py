"""Cold start: the time from exec to the first successful RPC (a grpc.health.v1.Health/Check), as Knative
users see it when a service scales from zero.

Usage: python3 cold_start.py [--runs N] [--floor COMMAND] NAME=COMMAND [NAME=COMMAND ...]
Each COMMAND is run with PORT set to a free port (and {PORT} in it replaced), pinned to core 0 (taskset); the
prober runs on core 1. It tries to connect in a tight loop, then sends one health check over HTTP/2 (Python
h2) and stops the clock at grpc-status 0. Servers are run round-robin (one run of each per round, the order
rotated every round), N rounds (default 20). Prints the median, min and max per server and, separately, the
median time to the first successful connect.

--floor COMMAND adds a trivial server (floor_responder.c: canned HTTP/2 bytes, nothing before listen but
socket/bind/listen) to the same rounds. What it measures is the harness's own cost (Popen of taskset, its
exec of the server, the connect loop, Python's h2), so each server's "own" time is its figure minus the
floor's: median - floor median and min - floor min.
"""
import argparse
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

import h2.config
import h2.connection
import h2.events

HEALTH_CHECK = b"\x00\x00\x00\x00\x00"  # an empty HealthCheckRequest: the whole server
CONNECT_TIMEOUT = 10.0  # seconds from exec until the server must accept a connection
RPC_TIMEOUT = 5.0  # seconds from connect until grpc-status must arrive
MAX_RUNS = 1000
FLOOR = "floor"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_check(sock, deadline):
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers"),
    ])
    connection.send_data(stream, HEALTH_CHECK, end_stream=True)
    sock.sendall(connection.data_to_send())
    for _ in range(10000):  # bounded in count as well as in time
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
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
    raise RuntimeError(f"no grpc-status within {RPC_TIMEOUT} s")


def stop(server):
    """SIGKILL the process we started (by its PID) and its process group (which is its PID: start_new_session)."""
    for kill in (lambda: os.killpg(server.pid, signal.SIGKILL), lambda: server.send_signal(signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    server.wait()


def one_run(command):
    """Returns (ms to first successful RPC, ms to first accepted connection)."""
    port = free_port()
    env = dict(os.environ, PORT=str(port))
    argv = ["taskset", "-c", "0"] + [part.replace("{PORT}", str(port)) for part in shlex.split(command)]
    start = time.monotonic()
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = start + CONNECT_TIMEOUT
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command}: not listening after {CONNECT_TIMEOUT} s")
                if server.poll() is not None:
                    raise RuntimeError(f"{command}: exited with {server.returncode} before listening")
        connected = time.monotonic()
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            health_check(sock, connected + RPC_TIMEOUT)
        return (time.monotonic() - start) * 1000, (connected - start) * 1000
    finally:
        stop(server)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help=f"rounds, 1-{MAX_RUNS} (default 20)")
    parser.add_argument("--floor", metavar="COMMAND",
                        help="the harness's floor (e.g. a built floor_responder.c), subtracted as 'own'")
    parser.add_argument("servers", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be 1-{MAX_RUNS}")
    servers = []
    for entry in args.servers:
        if "=" not in entry:
            parser.error(f"{entry!r} is not NAME=COMMAND")
        servers.append(entry.split("=", 1))
    if args.floor:
        if any(name == FLOOR for name, _ in servers):
            parser.error(f"--floor given and a server is also named {FLOOR!r}")
        servers.insert(0, [FLOOR, args.floor])
    if len({name for name, _ in servers}) != len(servers):
        parser.error("server names must be unique")
    os.sched_setaffinity(0, {1})
    times = {name: [] for name, _ in servers}
    connects = {name: [] for name, _ in servers}
    failures = {name: [] for name, _ in servers}
    began = time.monotonic()
    for round_ in range(args.runs):
        shift = round_ % len(servers)
        for name, command in servers[shift:] + servers[:shift]:
            try:
                total, connected = one_run(command)
            except (RuntimeError, OSError) as error:
                failures[name].append(str(error))
                continue
            times[name].append(total)
            connects[name].append(connected)

    load = os.getloadavg()
    print(f"exec to first successful RPC, {args.runs} rounds round-robin, {time.monotonic() - began:.2f} s, "
          f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    floor = times.get(FLOOR) if args.floor else None
    header = f"{'server':<24} {'median ms':>10} {'min':>8} {'max':>8} {'connect':>8}"
    if floor:
        header += f" {'own median':>11} {'own min':>8}"
    print(header + "   (connect: median ms to the first successful connect)")
    for name, values in times.items():
        if not values:
            print(f"{name:<24} {'all runs failed':>36}")
            continue
        line = (f"{name:<24} {statistics.median(values):>10.2f} {min(values):>8.2f} {max(values):>8.2f}"
                f" {statistics.median(connects[name]):>8.2f}")
        if floor and name != FLOOR:
            line += (f" {statistics.median(values) - statistics.median(floor):>11.2f}"
                     f" {min(values) - min(floor):>8.2f}")
        print(line)
    failed = False
    for name, errors in failures.items():
        if errors:
            failed = True
            print(f"{name}: {len(errors)} of {args.runs} runs failed, first: {errors[0]}", file=sys.stderr)
    if args.floor and not floor:
        print("the floor failed every run: no 'own' figures", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
