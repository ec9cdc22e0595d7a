#!/usr/bin/env bash
# Builds products as static executables: the Swift runtime, Foundation, OpenSSL, nghttp2, liburing, zlib,
# libstdc++ and glibc all linked in, no shared library and no dynamic loader at exec. Position-independent
# (static-pie), so the kernel still places the executable at a random address (ASLR).
#
#   ./dev/build-static-executable.sh [--check] [--package-path DIR] [--scratch-path DIR] [PRODUCT ...]
#
# PRODUCT defaults to ping-server; --package-path builds another package (Benchmarks/BenchClient), whose
# scratch path defaults to DIR/.build-static-executable. Paths are relative to the repository's root.
#
# Prints the directory the executables are in. --check also makes sure each has no NEEDED entry, then
# starts ping-server from it and pings it with ping-client from it by host name ("localhost", so glibc's
# built-in resolver runs in the static executable), and stops the server with SIGTERM.
#
# Why (Benchmarks/ColdStart/README.md): exec -> first RPC loses the loader's ≈2.5 ms. Why these flags
# (DesignNotes/Performance.md, "A static executable"): plain `-static-executable` links glibc's crtbeginT.o,
# whose registered unwind tables libgcc sorts on the first unwind, and the async main's `pthread_exit` of the
# main thread unwinds: ≈15 ms of CPU at start. `-static-pie` links crtbeginS.o and finds unwind tables through
# PT_GNU_EH_FRAME instead; gold cannot link static-pie (no --no-dynamic-linker), so bfd links it; glibc's
# static-pie start-up asserts on an rpath, so SwiftPM's $ORIGIN rpath is left out.
#
# Caveat for operators: getaddrinfo in a static glibc resolves with its built-in "files" and "dns" sources
# only; NSS modules named in nsswitch.conf beyond those (mdns, systemd, ...) are not loaded. OpenSSL is
# linked in, so an OpenSSL update means rebuilding the executable (as a container image is rebuilt anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
package=.
scratch=
products=()
while [ "$#" -gt 0 ]; do
    case "$1" in
    --check) check=true ;;
    --scratch-path) scratch=$2; shift ;;
    --package-path) package=$2; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) products+=("$1") ;;
    esac
    shift
done
[ -n "$scratch" ] || scratch=$package/.build-static-executable
[ "${#products[@]}" -gt 0 ] || products=(ping-server)
if $check; then
    for needed in ping-server ping-client; do
        [[ " ${products[*]} " == *" $needed "* ]] || products+=("$needed")
    done
fi

flags=(
    -c release --package-path "$package" --scratch-path "$scratch" --disable-local-rpath
    -Xswiftc -static-executable
    -Xswiftc -Xclang-linker -Xswiftc -static-pie
    -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=bfd
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for product in "${products[@]}"; do
    # The linker warns that getaddrinfo, dlopen, getpwnam_r, ... in a static executable need glibc's shared
    # NSS modules at run time for anything beyond its built-in sources (see above); the log is shown only on
    # failure.
    if ! swift build "${flags[@]}" --product "$product" >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
done
bin=$(swift build "${flags[@]}" --show-bin-path)

if $check; then
    for product in "${products[@]}"; do
        if readelf -d "$bin/$product" | grep -q NEEDED; then
            echo "$bin/$product needs shared libraries:" >&2
            readelf -d "$bin/$product" | grep NEEDED >&2
            exit 1
        fi
        readelf -h "$bin/$product" | grep -q "DYN (Position-Independent Executable" \
            || { echo "$bin/$product is not position-independent" >&2; exit 1; }
    done
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    server_log=$(mktemp)
    PORT=$port "$bin/ping-server" >"$server_log" 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; rm -f "$log" "$server_log"' EXIT
    for _ in $(seq 1 200); do
        grep -q listening "$server_log" && break
        kill -0 "$server" 2>/dev/null || { cat "$server_log" >&2; exit 1; }
        sleep 0.05
    done
    grep -q listening "$server_log" || { echo "static ping-server did not listen within 10 s" >&2; exit 1; }
    timeout 30 "$bin/ping-client" --host "localhost:$port" --insecure --count 2 static >&2
    timeout 30 "$bin/ping-client" --host "localhost:$port" --insecure --stream --count 2 static >&2
    kill -TERM "$server"
    timeout 30 tail --pid="$server" -f /dev/null
    wait "$server" || { echo "static ping-server exited with status $?" >&2; cat "$server_log" >&2; exit 1; }
    echo "static executables checked: no shared libraries, ping-server served ping-client" >&2
fi
echo "$bin"
