#!/usr/bin/env bash
# Builds the DocC documentation of every library module and fails on any warning (a broken symbol
# link, a missing article, a parameter that isn't documented). swift-docc-plugin is resolved only
# here: Package.swift adds it when COURIER_DOCS is set, so Courier's users never resolve it.
#
#   ./dev/docs.sh                 build all (into .build-docs/)
#   ./dev/docs.sh Courier ...     only these modules
#
# Code in the articles is checked elsewhere: DocumentationTests require every ```swift block to appear in
# a file that CI compiles (Snippets/, Examples/, Tests/).
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
if [ "${#modules[@]}" -eq 0 ]; then
    modules=(
        Courier CourierInMemory CourierHTTP2 CourierProtobuf CourierHealth CourierReflection CourierMetrics
        CourierTracing CourierServiceLifecycle
    )
fi
targets=()
for module in "${modules[@]}"; do targets+=(--target "$module"); done

export COURIER_DOCS=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A scratch path of its own: the symbol-graph build uses other flags than `swift build`, and would
# otherwise throw away the debug build that dev/test.sh made.
status=0
swift package --scratch-path .build-docs --allow-writing-to-directory .build-docs/documentation \
    generate-documentation "${targets[@]}" --output-path .build-docs/documentation ${DOCC_FLAGS:---warnings-as-errors} \
    >"$log" 2>&1 || status=$?
grep -v -E '^\[[0-9]+/[0-9]+\]|^(Fetching|Fetched|Creating|Working copy|Computing|Computed) ' "$log" || true
# SwiftPM's own note about a dependency's stray files (swift-distributed-tracing ships CMakeLists.txt next to
# its sources) is not a documentation warning.
if [ "$status" -ne 0 ] || grep -E "^(warning|error):" "$log" | grep -q -v "which are unhandled; explicitly declare"; then
    echo "docs: failed (above)" >&2
    exit 1
fi
echo "docs: ${modules[*]} built without warnings (.build-docs/documentation)"
