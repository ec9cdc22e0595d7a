#!/usr/bin/env bash
# Formats the Swift files in place with the toolchain's swift-format and .swift-format (apple/swift-nio's
# settings: 4 spaces, 120 columns, ordered imports, `///` doc comments, file-scoped `private`; generated code,
# listed in .swiftformatignore, is left alone).
#
#   ./dev/format.sh              every file
#   ./dev/format.sh FILE...      only these
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(./dev/swift-files.sh)
fi
swift format format --configuration .swift-format --parallel --in-place "${files[@]}"
