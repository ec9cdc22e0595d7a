#!/usr/bin/env bash
# Builds the grpc-go peers offline from Debian packages (GOPATH mode): golang-go, golang-google-grpc-dev
# (grpc-go 1.33), golang-goprotobuf-dev (protoc-gen-go 1.3.5, plugins=grpc) and grpc-proto.
#
#   Benchmarks/Peers/grpc-go/build.sh OUT_DIR      → OUT_DIR/grpc-go-bench-server, OUT_DIR/grpc-go-health-server
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT_DIR}" && cd "$1" && pwd)
missing=()
for package in golang-go golang-google-grpc-dev golang-goprotobuf-dev golang-google-protobuf-dev protobuf-compiler grpc-proto; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/courierbench/grpc_testing" "$gopath/src/courierbench/bench-server" "$gopath/src/courierbench/health-server"
map="Mgrpc/testing/messages.proto=courierbench/grpc_testing,Mgrpc/testing/benchmark_service.proto=courierbench/grpc_testing"
protoc -I /usr/share/grpc-proto --go_out="plugins=grpc,paths=source_relative,$map:$gopath/src/courierbench" \
    grpc/testing/messages.proto grpc/testing/benchmark_service.proto
mv "$gopath/src/courierbench/grpc/testing/"*.go "$gopath/src/courierbench/grpc_testing/"
sed -i 's/^package grpc_testing$/package grpc_testing/' "$gopath/src/courierbench/grpc_testing/"*.go
cp "$here/bench-server/main.go" "$gopath/src/courierbench/bench-server/"
cp "$here/health-server/main.go" "$gopath/src/courierbench/health-server/"
export GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$gopath/.cache"
(cd "$gopath/src/courierbench/bench-server" && go build -o "$out/grpc-go-bench-server" .)
(cd "$gopath/src/courierbench/health-server" && go build -o "$out/grpc-go-health-server" .)
echo "grpc-go $(dpkg -s golang-google-grpc-dev | sed -n 's/^Version: //p'), $(go version | cut -d' ' -f3): $out"
