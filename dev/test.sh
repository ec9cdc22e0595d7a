#!/usr/bin/env bash
# Installs what the tests need (when missing) and runs every test.
#
#   ./dev/test.sh
#
# The format and import checks (./dev/check-format.sh, ./dev/check-imports.sh), a debug build with
# warnings as errors (Snippets/ included), then `swift test`, the whole suite again under
# ThreadSanitizer (./dev/sanitize.sh thread), a short soak (./dev/soak.sh), the lossy network
# (./dev/test-netem.sh), the static executables the Dockerfile deploys
# (./dev/build-static-executable.sh --check), the snippets run, the DocC documentation
# (./dev/docs.sh, warnings are errors) and a user's package built and tested outside the repository
# with Courier's plugins (./dev/test-user-package.sh). `.ci/run` calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need; installed only when missing (needs root, as on CI).
APT_PACKAGES=(
    pkg-config protobuf-compiler grpc-proto liburing-dev libnghttp2-dev libssl-dev zlib1g-dev
    openssl nghttp2-client nghttp2-proxy iproute2
)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== Installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# grpcio (the gRPC C-core) is the interop peer the transport tests run against.
if ! python3 -c "import grpc" >/dev/null 2>&1; then
    echo "== Installing grpcio"
    python3 -m pip install -q grpcio grpcio-tools
fi
# grpcio-reflection's client checks the reflection service.
if ! python3 -c "import grpc_reflection" >/dev/null 2>&1; then
    echo "== Installing grpcio-reflection"
    python3 -m pip install -q grpcio-reflection
fi
# h2 (with hpack) drives the misbehaving-server and raw-attack peers of the transport tests.
if ! python3 -c "import h2" >/dev/null 2>&1; then
    echo "== Installing h2"
    python3 -m pip install -q h2
fi

command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.1 or later is needed)" >&2; exit 1; }

# Every step runs under a bound well above its slowest run on CI (2 cores), so a hang fails that step with a
# message instead of using up CI's 90 minutes. `timeout` signals the step's whole process group.
bounded() {
    local seconds=$1
    shift
    local rc=0
    timeout -k 30 "$seconds" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "dev/test.sh: '$*' did not finish within $seconds s (a hang?); stopped it" >&2
    fi
    return "$rc"
}

echo "== Formatting and imports (./dev/format.sh fixes the first)"
bounded 300 ./dev/check-format.sh
bounded 120 ./dev/check-imports.sh

echo "== Building (debug, warnings are errors)"
bounded 2400 swift build --build-tests -Xswiftc -warnings-as-errors

echo "== Testing"
bounded 900 swift test --skip-build

echo "== Allocations per unary round trip, against the committed ceilings"
bounded 1800 ./dev/check-allocations.sh

echo "== The core suite again, over HTTP/2 instead of the in-memory transport"
COURIER_TEST_TRANSPORT=http2 bounded 600 swift test --skip-build --filter CourierTests

echo "== The transport tests and the core suite over HTTP/2 again, on the epoll backend"
COURIER_IO=epoll bounded 600 swift test --skip-build --filter "CourierHTTP2Tests|InteropTests|PingTests"
COURIER_IO=epoll COURIER_TEST_TRANSPORT=http2 bounded 600 swift test --skip-build --filter CourierTests

echo "== The whole suite under ThreadSanitizer, on io_uring and on epoll (./dev/sanitize.sh)"
# Its own build (.build-tsan): about 3 min cold on 2 cores, then 1-2 min per backend, at most 4 tests at a time
# (see dev/sanitize.sh: with every test at once, the suites that race real deadlines against peer processes
# missed them under the sanitizer's slowdown). AddressSanitizer runs by hand (./dev/sanitize.sh address): the
# fuzz targets below already run the parsers under it.
bounded 2400 ./dev/sanitize.sh thread

echo "== The fuzz targets, 10 s each from their seeds (every input that ever crashed one is among them)"
bounded 1200 ./dev/fuzz.sh --seconds 10

echo "== A 30 s soak: ping-server (h2c and TLS) under mixed load; RSS, FDs, threads and live streams bounded"
bounded 600 ./dev/soak.sh --seconds 30 --interval 2 --skip-build

echo "== Over a slow, lossy network: two namespaces, netem (the qdisc, or in user space over TUN; skips without root or namespaces)"
bounded 900 ./dev/test-netem.sh --plain-if-no-netem --skip-build

echo "== ping-server and ping-client as static executables (what Examples/Ping/Dockerfile deploys): no shared library, they serve"
bounded 900 ./dev/build-static-executable.sh --check >/dev/null

echo "== The snippets the documentation quotes"
bin=$(swift build --show-bin-path)
for snippet in Snippets/*.swift; do
    name=$(basename "$snippet" .swift)
    timeout 60 "$bin/$name" >/dev/null || { echo "snippet $name failed" >&2; exit 1; }
done

echo "== Documentation (DocC, warnings are errors)"
bounded 1200 ./dev/docs.sh

echo "== A user's package with default settings, the build and command plugins"
bounded 1800 ./dev/test-user-package.sh
