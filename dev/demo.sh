#!/usr/bin/env bash
# The quick start: installs what is missing (apt, as root), builds the ping service, starts ping-server
# (h2c on $PORT, default 8080), pings it with ping-client (unary, then a bidirectional stream), then stops
# the server with SIGTERM so that you can see it drain.
#
#   ./dev/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pkg-config liburing-dev libnghttp2-dev libssl-dev zlib1g-dev)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== Installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.1 or later is needed)" >&2; exit 1; }

echo "== Building ping-server and ping-client"
swift build --product ping-server >/dev/null
swift build --product ping-client >/dev/null
bin=$(swift build --show-bin-path)

port=${PORT:-8080}
log=$(mktemp)
echo "== Starting ping-server on port $port"
PORT=$port "$bin/ping-server" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
# Wait for the "listening" log line (or the server's exit).
for _ in $(seq 1 100); do
    grep -q listening "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.05
done
cat "$log"

echo "== ping-client --host 127.0.0.1:$port --insecure --count 3 hello"
"$bin/ping-client" --host "127.0.0.1:$port" --insecure --count 3 hello
echo "== ping-client --host 127.0.0.1:$port --insecure --stream --count 3 hello"
"$bin/ping-client" --host "127.0.0.1:$port" --insecure --stream --count 3 hello

echo "== SIGTERM: ping-server drains and exits"
kill -TERM "$server"
wait "$server" && echo "ping-server exited with status 0"
tail -n +2 "$log"
