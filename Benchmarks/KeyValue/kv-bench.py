"""Issue 16's "actors on the loop" scenario: (b)-style unary load (h2load, 4 connections x 64 streams, Get of
a 1 KiB value) against Examples/KeyValue's kv-server with its store actor on the event loop, as a plain actor
(which runs on the loop too while uncontended), and as a plain actor called from the global executor (a thread
hop each way). Server pinned to core 0 with one loop (--loops to change), h2load to core 1, the two
placements interleaved per repeat; prints requests per second and per server CPU-second, median and spread,
and the ratios. See run.sh."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Compare"))
from compare import cpu_seconds, start_server, varint  # noqa: E402


def frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def field(number, payload):
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def call(port, method, body_file):
    out = subprocess.run(["nghttp", "-v", "--no-dep", "-H", "content-type: application/grpc", "-H", "te: trailers",
                          "-d", body_file, f"http://127.0.0.1:{port}/kv.KeyValue/{method}"],
                         capture_output=True, timeout=10)
    text = out.stdout.decode(errors="replace")
    if "grpc-status: 0" not in text:
        sys.exit(f"{method} on {port} did not answer grpc-status 0:\n{text[-2000:]}")
    return text


def h2load(port, body_file, clients, streams, requests):
    result = subprocess.run(
        ["taskset", "-c", "1", "h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams),
         "-d", body_file, "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{port}/kv.KeyValue/Get"],
        capture_output=True, text=True, timeout=300)
    match = re.search(r"finished in ([\d.]+)m?s, ([\d.]+) req/s", result.stdout)
    succeeded = re.search(r"(\d+) succeeded, (\d+) failed", result.stdout)
    if not match or not succeeded or succeeded.group(2) != "0":
        sys.exit(f"h2load failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--value-size", type=int, default=1024)
    parser.add_argument("--loops", type=int, default=1, help="server event loops (all on core 0)")
    parser.add_argument("server", help="the kv-server binary")
    args = parser.parse_args()
    runs = {"loop": [], "plain": [], "global": []}
    with tempfile.TemporaryDirectory() as scratch:
        put_file, get_file = os.path.join(scratch, "put"), os.path.join(scratch, "get")
        with open(put_file, "wb") as f:
            f.write(frame(field(1, b"bench") + field(2, b"\x00" * args.value_size)))
        with open(get_file, "wb") as f:
            f.write(frame(field(1, b"bench")))
        for repeat in range(args.repeats):
            for placement in runs:  # interleaved, so drift hits both alike
                server, port = start_server(placement, f"{args.server} --loops {args.loops} --port {{PORT}} --store {placement}")
                try:
                    call(port, "Put", put_file)
                    text = call(port, "Get", get_file)
                    if sum(map(int, re.findall(r"recv DATA frame <length=(\d+)", text))) < args.value_size + 5:
                        sys.exit(f"Get did not return the {args.value_size}-byte value:\n{text[-2000:]}")
                    cpu_before = cpu_seconds(server.pid)
                    rate = h2load(port, get_file, 4, 64, args.requests)
                    cpu = cpu_seconds(server.pid) - cpu_before
                    per_cpu = args.requests / cpu if cpu else 0
                    runs[placement].append((rate, per_cpu))
                    print(f"repeat {repeat + 1} {placement:<6} {rate:>10.0f} req/s  {per_cpu:>10.0f} req/CPU-s",
                          file=sys.stderr, flush=True)
                finally:
                    server.kill()
                    server.wait()
    print("| store actor | req/s (median, spread) | req per server CPU-s (median, spread) |")
    print("|---|---|---|")
    medians = {}
    for placement, results in runs.items():
        rates, per_cpu = [r[0] for r in results], [r[1] for r in results]
        medians[placement] = (statistics.median(rates), statistics.median(per_cpu))
        label = {"loop": "on the loop", "plain": "plain actor", "global": "plain actor, from the global executor (hop)"}[placement]
        print(f"| {label} | {medians[placement][0]:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
              f"{medians[placement][1]:,.0f} ({min(per_cpu):,.0f}–{max(per_cpu):,.0f}) |")
    for other in ("plain", "global"):
        if medians[other][0] and medians[other][1]:
            # Paired per repeat too (the placements of one repeat ran back to back): drift cancels out.
            paired = sorted(a[1] / b[1] for a, b in zip(runs["loop"], runs[other]) if b[1])
            print(f"\nloop/{other}: {medians['loop'][0] / medians[other][0]:.2f}x req/s, "
                  f"{medians['loop'][1] / medians[other][1]:.2f}x req per server CPU-s; paired per repeat "
                  f"{statistics.median(paired):.2f}x ({paired[0]:.2f}–{paired[-1]:.2f})")


if __name__ == "__main__":
    main()
