#!/usr/bin/env bash
# Builds what is missing and runs the whole comparison (issue #7 scenarios (a)–(f)): every server pinned
# to core 0 with one I/O thread, the load pinned to core 1, the same load for all, each scenario
# repeated (median and spread). Writes the tables, the raw JSON and the chart to Benchmarks/Results/.
#
#   Benchmarks/Compare/compare.sh [REPEATS]      (default 3; about 6 minutes per repeat)
#
# Servers: Courier's bench-server (one static executable, as deployed); grpc C++ 1.51 (Debian libgrpc++-dev, callback API); grpc-go 1.33
# (Debian golang-google-grpc-dev, GOPATH build, GOMAXPROCS=1); grpc-swift 2.4.3 on
# grpc-swift-nio-transport 2.9.2 (its own package, one NIO thread) with its defaults and tuned
# (8 MiB window, no flush coalescing). Unary load: h2load (neutral); streaming: Courier's bench-client;
# (f): Courier's bench-client and the grpc C++ client against the grpc C++ server.
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
out=.build-bench
results=Benchmarks/Results
mkdir -p "$out" "$results"
need=()
for package in nghttp2-client python3-pip; do dpkg -s "$package" >/dev/null 2>&1 || need+=("$package"); done
if [ "${#need[@]}" -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install -q matplotlib
echo "== Building what is missing"
# Courier's binaries as they are deployed (Examples/Ping/Dockerfile): static executables
# (./dev/build-static-executable.sh). Calls into the Swift runtime are then direct, not through the PLT, and no
# shared library is mapped: (b) +3-17 % and server RSS 27 -> 23 MiB for the static Swift runtime, then +2 % and
# 22 -> 19 MiB for the static executable (DesignNotes/Performance.md, 2026-12-07).
bin=$(./dev/build-static-executable.sh bench-server)
client=$(./dev/build-static-executable.sh --package-path Benchmarks/BenchClient bench-client)/bench-client
[ -x "$out/grpc-go-bench-server" ] || Benchmarks/Peers/grpc-go/build.sh "$out" >/dev/null
[ -x "$out/grpc-cpp-bench-client" ] || Benchmarks/Peers/grpc-cpp/build.sh "$out" >/dev/null
[ -x "$out/grpc-swift-bench-server" ] || Benchmarks/Peers/grpc-swift/build.sh "$out" >/dev/null
servers=(
    "courier=$bin/bench-server --loops 1 --port {PORT}"
    "grpc-c++=$out/grpc-cpp-bench-server --port {PORT}"
    "grpc-go=env GOMAXPROCS=1 $out/grpc-go-bench-server -port {PORT}"
    "grpc-swift=$out/grpc-swift-bench-server --threads 1 --port {PORT}"
    "grpc-swift-tuned=$out/grpc-swift-bench-server --threads 1 --tuned --port {PORT}"
)
{
    echo "# Comparison, $(date -u +%Y-%m-%d), $repeats repeats"
    echo
    echo "\`Benchmarks/Compare/compare.sh $repeats\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))."
    echo
    echo "## Unary, h2load (a)–(c)"
    python3 Benchmarks/Compare/compare.py --repeats "$repeats" --json "$results/unary.json" "${servers[@]}"
    echo
    echo "## Streaming, bench-client (d)–(e)"
    python3 Benchmarks/Compare/streaming.py --repeats "$repeats" --duration 4 --json "$results/streaming.json" "$client" "${servers[@]}"
    echo
    echo "## Clients against the grpc C++ server (f)"
    python3 Benchmarks/Compare/clients.py --repeats "$repeats" --duration 4 --json "$results/clients.json" \
        "$out/grpc-cpp-bench-server --port {PORT}" "$client" "$out/grpc-cpp-bench-client"
} | tee "$results/results.md"
python3 Benchmarks/Compare/chart.py "$results" "$results/chart.png"
echo "== Wrote $results/results.md and $results/chart.png"
