#!/usr/bin/env bash
# Runs the unary comparison (issue scenarios (a) and (b)) against each server, pinned as the benchmarks
# require: every server on core 0 with one I/O thread, h2load on core 1, the same load for all, each
# scenario repeated; prints requests/s, requests per server CPU-second and latency percentiles (from
# h2load's --log-file), median and spread of the repeats.
#
#   Benchmarks/Compare/compare.sh [REPEATS]      (default 3)
#
# Builds what is missing: Courier's bench-server (release) and the grpc-go and grpc C++ peers (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
out=.build-bench
mkdir -p "$out"
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
[ -x .build/release/bench-server ] || swift build -c release --product bench-server >/dev/null
[ -x "$out/grpc-go-bench-server" ] || Benchmarks/Peers/grpc-go/build.sh "$out" >/dev/null
[ -x "$out/grpc-cpp-bench-server" ] || Benchmarks/Peers/grpc-cpp/build.sh "$out" >/dev/null
python3 Benchmarks/Compare/compare.py --repeats "$repeats" \
    "courier=.build/release/bench-server --loops 1 --port {PORT}" \
    "grpc-go=env GOMAXPROCS=1 $out/grpc-go-bench-server -port {PORT}" \
    "grpc-c++=$out/grpc-cpp-bench-server --port {PORT}"
