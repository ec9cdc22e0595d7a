#!/usr/bin/env bash
# Builds the tests with a sanitizer and runs them on both I/O backends (io_uring, then epoll).
#
#   ./dev/sanitize.sh thread|address [FILTER...]      (no filter: every test)
#
# ThreadSanitizer builds into .build-tsan with -D COURIER_TSAN, which makes CourierMutex tell
# ThreadSanitizer when it is locked (Synchronization.Mutex's futex is invisible to it, see
# Sources/Courier/Concurrency/CourierMutex.swift); AddressSanitizer builds into .build-asan. Filters are
# `swift test --filter` patterns, joined with `|`. COURIER_SANITIZE_BACKENDS="io_uring" (or "epoll") runs one
# backend only; COURIER_TEST_TRANSPORT=http2 passes through to the core suite as usual. Any report fails the
# run: ThreadSanitizer exits 66 after its reports, AddressSanitizer at the first (halt_on_error), and
# LeakSanitizer at exit when COURIER_SANITIZE_LEAKS=1. Suppressions only from dev/sanitizers/*.supp, each entry with its reason.
# COURIER_SANITIZE_SKIP=REGEX leaves out the tests it matches (`swift test --skip`).
# Prints the wall time of the build and of each run.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizer="${1:-}"
case "$sanitizer" in
    thread) scratch=.build-tsan; extra=(-Xswiftc -DCOURIER_TSAN) ;;
    address) scratch=.build-asan; extra=() ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
esac
shift
filter=()
if [ $# -gt 0 ]; then
    joined=$(IFS='|'; echo "$*")
    filter=(--filter "$joined")
fi
backends=(${COURIER_SANITIZE_BACKENDS:-io_uring epoll})
skip=()
[ -n "${COURIER_SANITIZE_SKIP:-}" ] && skip=(--skip "$COURIER_SANITIZE_SKIP")

export TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$PWD/dev/sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
# The leak check is opt-in (COURIER_SANITIZE_LEAKS=1): it is clean for the library, but the test harness's
# child processes (ChildProcess, over Foundation's Process) leak their objects, hundreds of reports per run.
export ASAN_OPTIONS="halt_on_error=1 detect_leaks=${COURIER_SANITIZE_LEAKS:-0} ${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/dev/sanitizers/lsan.supp ${LSAN_OPTIONS:-}"

# At most 4 tests at once (Swift Testing's own knob; the default is one per test): the sanitizers slow the
# code 5-15x, and the suites that race real deadlines and timers against peer processes then missed them
# with 2 cores shared by the whole suite (DEADLINE_EXCEEDED, no report); with 4 at a time the whole suite
# passes on both backends, and sooner (ThreadSanitizer on io_uring: 92 s instead of 138 s).
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-4}"

start=$SECONDS
echo "== Building the tests with --sanitize=$sanitizer into $scratch"
swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" "${extra[@]}"
echo "== Built in $((SECONDS - start)) s"

for backend in "${backends[@]}"; do
    run=$SECONDS
    echo "== Testing under $sanitizer on $backend ${filter[*]}"
    if [ "$backend" = epoll ]; then export COURIER_IO=epoll; else unset COURIER_IO; fi
    swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${extra[@]}" "${filter[@]}" "${skip[@]}"
    echo "== $backend passed in $((SECONDS - run)) s"
done
echo "== $sanitizer: done in $((SECONDS - start)) s"
