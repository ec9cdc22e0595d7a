#!/usr/bin/env bash
# Fails if a Swift file isn't formatted as .swift-format says (`swift format lint --strict`), listing each
# finding; generated code (.swiftformatignore) is left out. ./dev/format.sh fixes what it reports.
#
#   ./dev/check-format.sh            every file
#   ./dev/check-format.sh FILE...    only these
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(./dev/swift-files.sh)
fi
if ! swift format lint --configuration .swift-format --strict --parallel "${files[@]}"; then
    echo "check-format: unformatted code (above); run ./dev/format.sh" >&2
    exit 1
fi
echo "check-format: ${#files[@]} files formatted"
