#!/usr/bin/env bash
# Builds the libFuzzer targets (Tests/Fuzz/) with -sanitize=fuzzer,address into .build-fuzz and runs them.
#
#   ./dev/fuzz.sh [--seconds N] [--jobs N] [TARGET...]     (no target: all; default 60 s each)
#   ./dev/fuzz.sh --build-only
#
# Each target starts from its committed seeds (Tests/Fuzz/Corpus/TARGET) and its dictionary
# (Tests/Fuzz/Dictionaries/TARGET.dict) when there is one; what it learns goes to .build-fuzz/corpus/TARGET,
# never into the tree. A crash, a timeout (-timeout, 10 s for one input) or running out of memory
# (-rss_limit_mb, 2 GiB) stops the run with a non-zero exit and leaves the input as
# .build-fuzz/artifacts/TARGET/crash-* (or timeout-*, oom-*): replay it with
# `.build-fuzz/debug/TARGET FILE`. A Swift Testing test in the normal suites reproduces every input that
# ever crashed (see DesignNotes/0006-Proving-it-holds.md).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(
    fuzz-deframer fuzz-deframer-compressed fuzz-grpc-timeout fuzz-grpc-message fuzz-metadata
    fuzz-request-head fuzz-response-head fuzz-protobuf fuzz-server-connection fuzz-client-connection fuzz-tls
)
seconds=60
build_only=false
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --build-only) build_only=true; shift ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

# --sanitize=fuzzer makes SwiftPM link libFuzzer's main; but two --sanitize flags become two -sanitize= flags
# for swiftc, and the last one wins (no coverage at all): the combined -sanitize=fuzzer,address comes last.
build=(swift build --build-path .build-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
echo "== Building ${targets[*]} (fuzzer, address sanitizer)"
# One build per product (SwiftPM builds one --product at a time); the shared modules are built once.
for target in "${targets[@]}"; do
    # gold warns about every ASan register helper it cannot export: noise.
    COURIER_FUZZ=1 "${build[@]}" --product "$target" 2>&1 | { grep -v "Cannot export local symbol" || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
done
$build_only && exit 0

bin=.build-fuzz/debug
# fuzz-tls's certificates: a throwaway PKI (valid two days), made again when a day old.
if [ -z "$(find .build-fuzz/pki/server.pem -mtime -1 2>/dev/null)" ]; then
    ./dev/make-test-certs.sh .build-fuzz/pki >/dev/null
fi
status=0
for target in "${targets[@]}"; do
    corpus=.build-fuzz/corpus/$target
    artifacts=.build-fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    dictionary=Tests/Fuzz/Dictionaries/$target.dict
    [ -f "$dictionary" ] && options+=(-dict="$dictionary")
    echo "== $target: ${seconds} s"
    # The grown corpus first, the committed seeds second (read only: libFuzzer writes to the first).
    if ! "$bin/$target" "${options[@]}" "$corpus" "Tests/Fuzz/Corpus/$target" >"$artifacts/log" 2>&1; then
        echo "$target FAILED (its log: $artifacts/log):" >&2
        grep -E "ERROR|SUMMARY|Fatal error|invariant|hang|Test unit written" "$artifacts/log" | head -20 >&2 || true
        status=1
        continue
    fi
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$artifacts/log" | tr '\n' ' '
    echo
done
exit $status
