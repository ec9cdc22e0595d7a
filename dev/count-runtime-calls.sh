#!/usr/bin/env bash
# Counts calls into the Swift runtime per RPC with uprobes: how many generic-metadata lookups, executor
# switches, task allocations, objects, cancellation handlers, continuations and dynamic exclusivity checks
# one unary RPC costs the client. Counts, not times, so they are stable on a noisy machine
# (DesignNotes/Performance.md uses them).
#
#   ./dev/count-runtime-calls.sh BENCH_CLIENT TARGET [BENCH_CLIENT_ARGS...]
#
# BENCH_CLIENT must be a static executable (./dev/build-static-executable.sh --package-path
# Benchmarks/BenchClient bench-client): a dynamic one resolves the runtime from libswift_Concurrency.so,
# where these probes are not placed. TARGET is host:port of a running server (e.g. the grpc C++ bench
# server). The default load is unary 1x1, 1 KiB, 2 s, no warm-up; extra arguments are appended to it.
# Needs root (perf probe). The figures include start-up (tens of calls in all), so run for seconds.
set -euo pipefail
bin=$(readlink -f "$1")
target=$2
shift 2
group=courier_count
symbols=(swift_getGenericMetadata swift_task_switch swift_task_alloc swift_allocObject
    swift_task_addCancellationHandler swift_continuation_init swift_beginAccess)
out=$(mktemp -d)
trap 'perf probe -q -d "$group:*" 2>/dev/null || true; rm -rf "$out"' EXIT
perf probe -q -d "$group:*" 2>/dev/null || true
for symbol in "${symbols[@]}"; do
    address=$(nm "$bin" | awk -v s="$symbol" '$3 == s { print $1 }')
    if [ -z "$address" ]; then
        echo "count-runtime-calls: $symbol not in $bin (not a static executable?)" >&2
        exit 1
    fi
    perf probe -q -x "$bin" -a "$group:${symbol#swift_}=0x$address"
done
perf stat -e "$group:*" -x, -o "$out/stat" "$bin" --target "$target" --scenario unary --connections 1 \
    --streams 1 --size 1024 --warmup 0 --duration 2 "$@" --json "$out/run.json" >/dev/null
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rpcs = json.load(open(out + "/run.json"))["count"]
print(f"{rpcs} RPCs; per RPC:")
for line in open(out + "/stat"):
    fields = line.split(",")
    if len(fields) > 2 and fields[0].strip().isdigit():
        print(f"  {fields[2].split(':')[1]:<28} {int(fields[0]) / rpcs:6.2f}")
PY
