#!/usr/bin/env bash
# Issue 16's "actors on the loop" benchmark: (b)-style unary load against Examples/KeyValue's kv-server,
# store actor on the loop vs a plain actor (see kv-bench.py). Server on core 0, h2load on core 1.
#
#   Benchmarks/KeyValue/run.sh [REPEATS] [LOOPS]      (defaults 3 and 1; under a minute per repeat)
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
loops=${2:-1}
dpkg -s nghttp2-client >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
swift build -c release --product kv-server >/dev/null
python3 Benchmarks/KeyValue/kv-bench.py --repeats "$repeats" --loops "$loops" .build/release/kv-server
