#!/usr/bin/env bash
# Builds Examples/Observability (observed-ping-server: the ping service with swift-otel) and runs its
# end-to-end test against a small OTLP/gRPC collector written in Python (grpcio + opentelemetry-proto).
# Not part of ./dev/test.sh: swift-otel brings SwiftNIO and grpc-swift, a build of many minutes.
#
#   ./dev/test-observability.sh            # release build, as the example's README says
#   CONFIGURATION=debug ./dev/test-observability.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c "import grpc, opentelemetry.proto" >/dev/null 2>&1 ||
    python3 -m pip install -q grpcio opentelemetry-proto

configuration="${CONFIGURATION:-release}"
swift build -c "$configuration" --package-path Examples/Observability --product observed-ping-server
bin=$(swift build -c "$configuration" --package-path Examples/Observability --show-bin-path)
timeout 120 python3 Examples/Observability/Tests/otlp_end_to_end.py "$bin/observed-ping-server"
