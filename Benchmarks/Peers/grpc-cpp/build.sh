#!/usr/bin/env bash
# Builds the grpc C++ peer from Debian packages (libgrpc++-dev 1.51, protobuf-compiler-grpc).
#
#   Benchmarks/Peers/grpc-cpp/build.sh OUT_DIR      → OUT_DIR/grpc-cpp-bench-server, OUT_DIR/grpc-cpp-bench-client
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT_DIR}" && cd "$1" && pwd)
missing=()
for package in libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto g++ pkg-config; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
protoc -I /usr/share/grpc-proto --cpp_out="$gen" --grpc_out="$gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
    grpc/testing/messages.proto grpc/testing/benchmark_service.proto
g++ -O2 -std=c++17 -I "$gen" "$here/bench_server.cc" "$gen"/grpc/testing/*.cc -o "$out/grpc-cpp-bench-server" \
    $(pkg-config --cflags --libs grpc++ protobuf)
g++ -O2 -std=c++17 -I "$gen" "$here/bench_client.cc" "$gen"/grpc/testing/*.cc -o "$out/grpc-cpp-bench-client" \
    $(pkg-config --cflags --libs grpc++ protobuf)
echo "grpc C++ $(dpkg -s libgrpc++-dev | sed -n 's/^Version: //p'): $out/grpc-cpp-bench-server"
