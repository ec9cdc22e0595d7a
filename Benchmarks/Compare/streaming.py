"""The streaming scenarios (d) and (e) with Courier's bench-client as the load (pinned to core 1) against
each server (pinned to core 0), interleaved and repeated; prints a table of medians with messages per
server CPU-second.

Usage: python3 Benchmarks/Compare/streaming.py [--repeats N] [--duration S] BENCH_CLIENT NAME=COMMAND...
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from compare import cpu_seconds, start_server  # noqa: E402

SCENARIOS = [
    ("(d) ping-pong, 1 stream", ["--scenario", "pingpong", "--connections", "1", "--streams", "1", "--size", "0"]),
    ("(d) ping-pong, 64 streams", ["--scenario", "pingpong", "--connections", "1", "--streams", "64", "--size", "0"]),
    ("(e) server streaming, 1 KiB", ["--scenario", "fromserver", "--connections", "1", "--streams", "1", "--size", "1024"]),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--json", help="also write the results here (for chart.py)")
    parser.add_argument("client")
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    servers = [s.split("=", 1) for s in args.servers]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for scenario, flags in SCENARIOS:
            for _ in range(args.repeats):
                for name, command in servers:
                    server, port = start_server(name, command)
                    try:
                        out = os.path.join(scratch, "result.json")
                        client = subprocess.Popen(["taskset", "-c", "1", args.client, "--target", f"127.0.0.1:{port}", *flags,
                                                   "--warmup", "1", "--duration", str(args.duration), "--json", out],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                        time.sleep(1)  # the warm-up: server CPU is counted over the measured window only
                        cpu_before = cpu_seconds(server.pid)
                        _, errors = client.communicate(timeout=120)
                        if client.returncode != 0:
                            sys.exit(f"bench-client failed against {name}: {errors.decode(errors='replace')[-2000:]}")
                        cpu = cpu_seconds(server.pid) - cpu_before
                        result = json.load(open(out))
                        per_cpu = result["count"] / cpu if cpu else 0
                        results.setdefault((scenario, name), []).append(
                            (result["rate"], per_cpu, result["latencyMicroseconds"]["p50"], result["latencyMicroseconds"]["p99"]))
                        print(f"{scenario:<30} {name:<10} {result['rate']:>10.0f} /s  {per_cpu:>10.0f} per CPU-s", file=sys.stderr, flush=True)
                    finally:
                        server.kill()
                        server.wait()
    if args.json:
        rows = [{"scenario": scenario, "server": name, "rates": [r[0] for r in runs],
                 "median": statistics.median(r[0] for r in runs), "per_cpu": statistics.median(r[1] for r in runs),
                 "p50": statistics.median(r[2] for r in runs), "p99": statistics.median(r[3] for r in runs)}
                for (scenario, name), runs in results.items()]
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\n| scenario | server | messages/s (median, spread) | per server CPU-s | p50 µs | p99 µs |")
    print("|---|---|---|---|---|---|")
    for (scenario, name), runs in results.items():
        rates = [r[0] for r in runs]
        print(f"| {scenario} | {name} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
              f"{statistics.median(r[1] for r in runs):,.0f} | {statistics.median(r[2] for r in runs):.0f} | "
              f"{statistics.median(r[3] for r in runs):.0f} |")


if __name__ == "__main__":
    main()
