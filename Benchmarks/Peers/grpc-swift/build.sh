#!/usr/bin/env bash
# Builds the grpc-swift 2 peer (release) from the package mirror, in a scratch folder of its own.
#
#   Benchmarks/Peers/grpc-swift/build.sh OUT_DIR      → OUT_DIR/grpc-swift-bench-server
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT_DIR}" && cd "$1" && pwd)
swift build -c release --package-path "$here" --scratch-path "$out/grpc-swift-build" --product grpc-swift-bench-server
cp "$out/grpc-swift-build/release/grpc-swift-bench-server" "$out/"
echo "grpc-swift-2 2.4.3, grpc-swift-nio-transport 2.9.2, grpc-swift-protobuf 2.4.1, swift-protobuf 1.39.0, $(swift --version 2>&1 | head -1): $out"
