"""Scenario (f): the Courier client and the grpc C++ client, each as the load against the same grpc C++
server (pinned to core 0; the client pinned to core 1), unary 1 KiB, 4 connections x 64 calls in flight,
interleaved and repeated. The comparable figure is requests per client CPU-second: the server, one core
of grpc C++, can be the limit of requests/s for both.

Usage: python3 Benchmarks/Compare/clients.py [--repeats N] [--duration S] [--json FILE] \\
           SERVER_COMMAND COURIER_BENCH_CLIENT GRPC_CPP_BENCH_CLIENT
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from compare import cpu_seconds, start_server  # noqa: E402

LOAD = ["--connections", "4", "--streams", "64", "--size", "1024", "--warmup", "1"]


def run_courier(client, port, duration, scratch):
    out = os.path.join(scratch, "courier.json")
    subprocess.run(["taskset", "-c", "1", client, "--target", f"127.0.0.1:{port}", "--scenario", "unary", *LOAD,
                    "--duration", str(duration), "--json", out], check=True, capture_output=True, timeout=120)
    result = json.load(open(out))
    return result["rate"], result["perClientCPUSecond"]


def run_grpc_cpp(client, port, duration):
    out = subprocess.run(["taskset", "-c", "1", client, "--target", f"127.0.0.1:{port}", *LOAD,
                          "--duration", str(duration)], check=True, capture_output=True, timeout=120, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["requests_per_second"], result["requests_per_client_cpu_second"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--json")
    parser.add_argument("server")
    parser.add_argument("courier_client")
    parser.add_argument("grpc_cpp_client")
    args = parser.parse_args()
    results = {"courier client": [], "grpc-c++ client": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            for name in results:
                server, port = start_server("grpc-c++", args.server)  # a fresh server for every run
                try:
                    cpu_before = cpu_seconds(server.pid)
                    if name == "courier client":
                        rate, per_cpu = run_courier(args.courier_client, port, args.duration, scratch)
                    else:
                        rate, per_cpu = run_grpc_cpp(args.grpc_cpp_client, port, args.duration)
                    server_cpu = cpu_seconds(server.pid) - cpu_before
                finally:
                    server.kill()
                    server.wait()
                results[name].append((rate, per_cpu, server_cpu))
                print(f"(f) {name:<16} {rate:>10.0f} req/s  {per_cpu:>10.0f} per client CPU-s  "
                      f"(server CPU {server_cpu:.1f} s)", file=sys.stderr, flush=True)
    rows = [{"scenario": "(f) unary 4x64, 1 KiB, grpc C++ server", "client": name,
             "rates": [r[0] for r in runs], "median": statistics.median(r[0] for r in runs),
             "per_client_cpu": statistics.median(r[1] for r in runs)} for name, runs in results.items()]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\n| scenario | client | req/s (median, spread) | req per client CPU-s |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['scenario']} | {row['client']} | {row['median']:,.0f} ({min(row['rates']):,.0f}–"
              f"{max(row['rates']):,.0f}) | {row['per_client_cpu']:,.0f} |")


if __name__ == "__main__":
    main()
