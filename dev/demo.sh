#!/usr/bin/env bash
# Builds Courier and runs the greeter example (generated from Examples/Greeter/hello.proto): a server and
# a client in one process, all four RPC kinds.
#
#   ./dev/demo.sh
#
# (The ping service over HTTP/2 replaces this demo once the HTTP/2 transport lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.1 or later is needed)" >&2; exit 1; }
swift run greeter "$@"
