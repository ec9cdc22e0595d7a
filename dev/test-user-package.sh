#!/usr/bin/env bash
# Builds and tests Tests/UserPackage as a new user's package: outside this repository, with Swift's
# default settings, depending on this checkout by path, with code from Courier's build plugin (target
# KeyValue) and command plugin (target Echo), its tests over the in-memory transport and HTTP/2 (h2c and
# TLS), then its `kv` executable both ways.
#
#   ./dev/test-user-package.sh
#
# The package is copied to $COURIER_USER_PACKAGE_DIR (default: /tmp/courier-user-package) and its build
# directory kept there, so later runs are incremental. ./dev/test.sh calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${COURIER_USER_PACKAGE_DIR:-${TMPDIR:-/tmp}/courier-user-package}
mkdir -p "$work"

# The checkout is linked as .../courier, so the path dependency's package name is "courier" whatever this
# directory is called (a path dependency is named after the last component of its path).
ln -sfn "$root" "$work/courier"
# Copies keep their modification times, so an unchanged file is not rebuilt.
mkdir -p "$work/KeyValueApp"
(cd Tests/UserPackage && tar -cf - --exclude=.build --exclude=Generated .) | (cd "$work/KeyValueApp" && tar -xpf -)
cd "$work/KeyValueApp"


echo "== User package: the command plugin writes Sources/Echo/Generated"
swift package --allow-writing-to-package-directory generate-courier-code-from-protos --target Echo

echo "== User package: build (the build plugin generates KeyValue's code)"
swift build --build-tests

certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
"$root/dev/make-test-certs.sh" "$certs" >/dev/null

echo "== User package: tests"
KV_TLS_DIR="$certs" swift test --skip-build

echo "== User package: kv, over h2c and TLS"
bin=$(swift build --show-bin-path)
"$bin/kv"
"$bin/kv" --tls "$certs"
