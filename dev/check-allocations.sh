#!/usr/bin/env bash
# A regression guard without timing: heap allocations per unary round trip (the micro-benchmark's malloc
# counter; in memory through the core, and over HTTP/2 on loopback with client and server in one process)
# against the ceilings committed in Benchmarks/Micro/allocation-ceilings.json. Fails when a change adds an
# allocation to the hot path. Counts are averages over many calls, so amortised allocations (task-allocator
# slabs, buffer growth) show up as fractions; of three runs the lowest counts. Allocations of 64 KiB or more
# on 1 MiB round trips are checked too ("large" in the ceilings): large buffers are reused, not reallocated.
#
#   ./dev/check-allocations.sh            debug build (what dev/test.sh has built)
#   ./dev/check-allocations.sh release    release build (builds the micro-benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${1:-debug}
if [ "$configuration" = release ]; then
    swift build -c release --product micro-benchmark >/dev/null
fi
bin=$(swift build -c "$configuration" --show-bin-path)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
# Three runs, the lowest count of each: scheduling only ever adds (a slab more, a buffer grown).
# Each run takes 1-2 s; the time limit turns a hang (a lost wake-up, as once in the in-memory
# transport) into a failure with a message instead of CI's own time-out.
for run in 1 2 3; do
    if ! timeout 120 "$bin/micro-benchmark" --iterations 40000 --only "round trip" \
        --json "$results/$run.json" >"$results/$run.log" 2>&1; then
        echo "check-allocations: run $run failed or hung (120 s); what it printed:" >&2
        cat "$results/$run.log" >&2
        exit 1
    fi
done
python3 - "$configuration" "$results" Benchmarks/Micro/allocation-ceilings.json <<'PY'
import glob, json, sys
configuration, results_dir, ceilings_path = sys.argv[1:]
all_ceilings = json.load(open(ceilings_path))
results, large = {}, {}
for path in glob.glob(results_dir + "/*.json"):
    for r in json.load(open(path)):
        results[r["name"]] = min(results.get(r["name"], float("inf")), r["allocationsPerOperation"])
        large[r["name"]] = min(large.get(r["name"], float("inf")), r["largeAllocationsPerOperation"])
failed = False
checks = [(name, ceiling, results, "allocs/op") for name, ceiling in all_ceilings[configuration].items()]
checks += [(name, ceiling, large, "allocs ≥ 64 KiB/op")
           for name, ceiling in all_ceilings["large"][configuration].items()]
for name, ceiling, measured_by_name, unit in checks:
    if name not in measured_by_name:
        print(f"check-allocations: no measurement named {name!r}"); failed = True; continue
    measured = measured_by_name[name]
    verdict = "ok" if measured <= ceiling else "OVER THE CEILING"
    print(f"check-allocations ({configuration}): {name}: {measured:.2f} {unit}, ceiling {ceiling:.2f}: {verdict}")
    failed |= measured > ceiling
sys.exit(1 if failed else 0)
PY
