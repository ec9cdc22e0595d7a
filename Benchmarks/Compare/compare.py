"""The unary scenarios with h2load as a neutral load generator; see compare.sh."""
import argparse
import json
import os
import re
import shlex
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_body(response_size, payload=0):
    """A SimpleRequest (response_size=2, payload=3 {body=2}) framed as a gRPC message."""
    message = b""
    if response_size:
        message += b"\x10" + varint(response_size)
    if payload:
        body = b"\x12" + varint(payload) + b"\x00" * payload
        message += b"\x1a" + varint(len(body)) + body
    return b"\x00" + struct.pack(">I", len(message)) + message


def varint(value):
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def start_server(name, command):
    """Starts `command` (with {PORT} filled in) pinned to core 0; returns (process, port) once it accepts."""
    port = free_port()
    argv = ["taskset", "-c", "0"] + shlex.split(command.replace("{PORT}", str(port)))
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                sys.exit(f"{name} did not start")
            time.sleep(0.05)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def check(port, body_file, response_size):
    """One real call, checking grpc-status 0 and the payload size (h2load counts Trailers-Only errors as successes)."""
    out = subprocess.run(["nghttp", "-v", "--no-dep", "-H", "content-type: application/grpc", "-H", "te: trailers",
                          "-d", body_file, f"http://127.0.0.1:{port}/grpc.testing.BenchmarkService/UnaryCall"],
                         capture_output=True, timeout=10)
    text = out.stdout.decode(errors="replace")
    # The response DATA: a 5-byte prefix, then SimpleResponse{payload{body}} of response_size + a few bytes.
    data = re.findall(r"recv DATA frame <length=(\d+)", text)
    if "grpc-status: 0" not in text or sum(map(int, data)) < response_size + 5:
        sys.exit(f"server on {port} did not answer grpc-status 0 with {response_size} bytes:\n{text[-2000:]}")


def run_h2load(port, body_file, clients, streams, requests, log_file, headers=()):
    extra = [argument for header in headers for argument in ("-H", header)]
    result = subprocess.run(
        ["taskset", "-c", "1", "h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams),
         "-d", body_file, "-H", "content-type: application/grpc", "-H", "te: trailers", *extra, "--log-file", log_file,
         f"http://127.0.0.1:{port}/grpc.testing.BenchmarkService/UnaryCall"],
        capture_output=True, text=True, timeout=300)
    match = re.search(r"finished in ([\d.]+)m?s, ([\d.]+) req/s", result.stdout)  # h2load prints ms under 1 s
    succeeded = re.search(r"(\d+) succeeded, (\d+) failed", result.stdout)
    if not match or not succeeded or succeeded.group(2) != "0":
        sys.exit(f"h2load failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(2))


def percentiles(log_file):
    # h2load --log-file: start time, status, duration (µs) per request
    durations = sorted(int(line.split("\t")[2]) for line in open(log_file) if line.strip())
    pick = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))]
    return pick(0.50), pick(0.99)


SCENARIOS = [
    # name, response/request payload, clients, streams per client, requests, extra request headers
    ("(a) 1x1, 0 B", 0, 1, 1, 20000, ()),
    ("(a) 1x1, 1 KiB", 1024, 1, 1, 20000, ()),
    ("(b) 4x64, 1 KiB", 1024, 4, 64, 200000, ()),
    # As real clients send it: grpc-go and grpcio send grpc-timeout whenever a call has a deadline.
    ("(b) 4x64, 1 KiB, grpc-timeout", 1024, 4, 64, 200000, ("grpc-timeout: 10S",)),
    ("(c) 1x4, 1 MiB", 1 << 20, 1, 4, 2000, ()),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="scenario letters to run, e.g. 'ab' (default: all)")
    parser.add_argument("--json", help="also write the raw results here (for chart.py)")
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    servers = [s.split("=", 1) for s in args.servers]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for scenario, size, clients, streams, requests, headers in SCENARIOS:
            if args.only and scenario[1] not in args.only:
                continue
            body_file = os.path.join(scratch, f"body-{size}")
            with open(body_file, "wb") as f:
                f.write(grpc_body(size, size))
            for repeat in range(args.repeats):
                for name, command in servers:  # interleaved, so drift hits every server alike
                    server, port = start_server(name, command)
                    try:
                        check(port, body_file, size)
                        log_file = os.path.join(scratch, "h2load.log")
                        cpu_before = cpu_seconds(server.pid)
                        rate = run_h2load(port, body_file, clients, streams, requests, log_file, headers)
                        cpu = cpu_seconds(server.pid) - cpu_before
                        p50, p99 = percentiles(log_file)
                        rss = int(open(f"/proc/{server.pid}/status").read().split("VmRSS:")[1].split()[0])
                        results.setdefault((scenario, name), []).append((rate, requests / cpu if cpu else 0, p50, p99, rss))
                        print(f"{scenario:<31} {name:<10} {rate:>10.0f} req/s  {requests / cpu if cpu else 0:>10.0f} req/CPU-s  "
                              f"p50 {p50:>6} µs  p99 {p99:>6} µs  RSS {rss // 1024} MiB", file=sys.stderr, flush=True)
                    finally:
                        server.kill()
                        server.wait()
    if args.json:
        rows = []
        for (scenario, name), runs in results.items():
            rates = [r[0] for r in runs]
            rows.append({"scenario": scenario, "server": name, "rates": rates, "median": statistics.median(rates),
                         "megabytes": statistics.median(rates) * 2 * dict((s, z) for s, z, *_ in SCENARIOS)[scenario] / 1e6,
                         "per_cpu": statistics.median(r[1] for r in runs), "p50": statistics.median(r[2] for r in runs),
                         "p99": statistics.median(r[3] for r in runs), "rss_kib": max(r[4] for r in runs)})
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\n| scenario | server | req/s (median, spread) | payload MB/s | req per server CPU-s | p50 µs | p99 µs | server RSS |")
    print("|---|---|---|---|---|---|---|---|")
    sizes = {scenario: size for scenario, size, *_ in SCENARIOS}
    for (scenario, name), runs in results.items():
        rates = [r[0] for r in runs]
        megabytes = statistics.median(rates) * 2 * sizes[scenario] / 1e6  # request and response payloads
        print(f"| {scenario} | {name} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | {megabytes:,.0f} | "
              f"{statistics.median(r[1] for r in runs):,.0f} | {statistics.median(r[2] for r in runs):.0f} | "
              f"{statistics.median(r[3] for r in runs):.0f} | {max(r[4] for r in runs) // 1024} MiB |")


if __name__ == "__main__":
    main()
