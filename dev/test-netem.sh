#!/usr/bin/env bash
# The HTTP/2 transport over a slow, lossy network: two network namespaces of its own joined by a veth pair,
# `tc netem` on both ends (delay, jitter, loss, reordering), interop-server in one namespace and Courier's
# clients in the other. Checks, each timed:
#   - every interop case (interop-client --test_case all: large_unary, client/server streaming, ping_pong,
#     timeout_on_sleeping_server, cancel_after_begin, ...) passes;
#   - a large transfer arrives intact (interop-soak --mode transfer: a server stream and a client stream of
#     --megabytes each, then a bidirectional stream);
#   - a 1 s deadline on a sleeping server ends DEADLINE_EXCEEDED on time (--mode deadline);
#   - client keepalive (10 s, 5 s timeout) keeps a stream quiet for 22 s alive (--mode keepalive), and
#     detects a dead peer when the server's link goes down mid-call: UNAVAILABLE in 14 to 20 s (dead_peer).
#
#   ./dev/test-netem.sh [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT] [--megabytes N]
#                       [--plain | --plain-if-no-netem] [--skip-build]
#
# Default netem: delay 40ms 10ms loss 3% reorder 5%, on each end. Needs root, iproute2 and the netem qdisc;
# without namespaces it prints SKIP and exits 0. Without netem it prints SKIP too, unless --plain-if-no-netem
# (what dev/test.sh passes): then the same checks run over a veth rate-limited by tbf (20 Mbit/s, a 50 ms
# queue that drops what overflows it) or, without tbf, a plain one, so that the namespace path, the transfer
# and the keepalive checks still run. --plain: no netem even where it exists.
set -euo pipefail
cd "$(dirname "$0")/.."

delay=40
jitter=10
loss=3
reorder=5
megabytes=8
plain=0
plain_if_no_netem=0
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --delay) delay=$2; shift 2 ;;
        --jitter) jitter=$2; shift 2 ;;
        --loss) loss=$2; shift 2 ;;
        --reorder) reorder=$2; shift 2 ;;
        --megabytes) megabytes=$2; shift 2 ;;
        --plain) plain=1; shift ;;
        --plain-if-no-netem) plain_if_no_netem=1; shift ;;
        --skip-build) build=0; shift ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
done

skip() { echo "SKIP lossy network: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need root)"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v tc >/dev/null || skip "no tc (iproute2)"

if [ "$build" -eq 1 ]; then
    for product in interop-server interop-client interop-soak; do
        swift build --product "$product" -Xswiftc -warnings-as-errors
    done
fi
bin=$(swift build --show-bin-path)
for tool in interop-server interop-client interop-soak; do
    [ -x "$bin/$tool" ] || { echo "netem: $bin/$tool is missing (build it, or drop --skip-build)" >&2; exit 1; }
done

# Names of this run only (an interface name has at most 15 characters).
server_ns="courier-netem-$$-server"
client_ns="courier-netem-$$-client"
server_if="cnm$$s"
client_if="cnm$$c"
server_address=10.77.0.1
work=$(mktemp -d /tmp/courier-netem.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then  # its last connection is dead (dead_peer): no graceful shutdown
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    ip netns del "$server_ns" 2>/dev/null || true  # deleting a namespace deletes its end of the veth
    ip netns del "$client_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$server_ns" 2>"$work/error" || skip "cannot create a network namespace ($(cat "$work/error"))"
ip netns add "$client_ns"
ip link add "$server_if" type veth peer name "$client_if"
ip link set "$server_if" netns "$server_ns"
ip link set "$client_if" netns "$client_ns"
ip -n "$server_ns" addr add "$server_address/30" dev "$server_if"
ip -n "$client_ns" addr add 10.77.0.2/30 dev "$client_if"
for ns in "$server_ns" "$client_ns"; do ip -n "$ns" link set lo up; done
ip -n "$server_ns" link set "$server_if" up
ip -n "$client_ns" link set "$client_if" up

netem="delay ${delay}ms ${jitter}ms loss ${loss}% reorder ${reorder}%"
if [ "$plain" -eq 1 ]; then
    settings="plain veth (--plain: no netem)"
elif ip netns exec "$server_ns" tc qdisc add dev "$server_if" root netem $netem 2>"$work/error"; then
    ip netns exec "$client_ns" tc qdisc add dev "$client_if" root netem $netem
    settings="netem $netem, on both ends"
elif [ "$plain_if_no_netem" -eq 1 ]; then
    echo "SKIP lossy network: tc netem is unavailable here ($(tr -d '\n' <"$work/error")); the checks run without it"
    # Still a slow link where tbf exists: a rate limit whose queue drops what overflows it (TCP sees loss).
    tbf="rate 20mbit burst 32kbit latency 50ms"
    if ip netns exec "$server_ns" tc qdisc add dev "$server_if" root tbf $tbf 2>/dev/null &&
        ip netns exec "$client_ns" tc qdisc add dev "$client_if" root tbf $tbf 2>/dev/null; then
        settings="tbf $tbf, on both ends (netem unavailable)"
    else
        settings="plain veth (netem and tbf unavailable)"
    fi
else
    skip "tc netem is unavailable here ($(tr -d '\n' <"$work/error"))"
fi
echo "== Namespaces $server_ns and $client_ns, veth $server_if/$client_if: $settings"

# The client's keepalive pings every 10 s while a stream is open: the server permits pings 5 s apart.
ip netns exec "$server_ns" "$bin/interop-server" --host "$server_address" --port 50051 \
    --keepalive_min_time_ms 5000 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do  # up to 30 s: the line is the readiness signal
    grep -q '^interop-server listening' "$work/server.log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^interop-server listening' "$work/server.log" || { echo "netem: the server did not start" >&2; exit 1; }

failures=0
results=()
# Runs a check in the client's namespace, at most 120 s; records its result and time.
check() {
    local name=$1 start end code=0
    shift
    start=$(date +%s.%N)
    timeout 120 ip netns exec "$client_ns" "$@" >"$work/$name.log" 2>&1 || code=$?
    end=$(date +%s.%N)
    local seconds
    seconds=$(awk -v a="$end" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
    if [ "$code" -eq 0 ]; then
        results+=("PASS  ${seconds}s  $name")
    else
        results+=("FAIL  ${seconds}s  $name (exit $code)")
        failures=$((failures + 1))
        cat "$work/$name.log"
    fi
    grep -v '^PASS ' "$work/$name.log" | sed "s/^/  /" | tail -25
}
target=(--server_host "$server_address" --server_port 50051)
check interop-all "$bin/interop-client" "${target[@]}" --test_case all
check transfer "$bin/interop-soak" --mode transfer "${target[@]}" --megabytes "$megabytes"
check deadline "$bin/interop-soak" --mode deadline "${target[@]}"
check keepalive "$bin/interop-soak" --mode keepalive "${target[@]}"

# The dead peer: once the first response is in, the server's end of the link goes down.
start=$(date +%s.%N)
timeout 120 ip netns exec "$client_ns" "$bin/interop-soak" --mode dead_peer "${target[@]}" >"$work/dead_peer.log" 2>&1 &
dead_pid=$!
for _ in $(seq 300); do
    grep -q '^first response' "$work/dead_peer.log" && break
    kill -0 "$dead_pid" 2>/dev/null || break
    sleep 0.1
done
ip -n "$server_ns" link set "$server_if" down
code=0
wait "$dead_pid" || code=$?
seconds=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
grep -v '^first response' "$work/dead_peer.log" | sed 's/^/  /'
if [ "$code" -eq 0 ]; then
    results+=("PASS  ${seconds}s  dead_peer")
else
    results+=("FAIL  ${seconds}s  dead_peer (exit $code)")
    failures=$((failures + 1))
fi

echo "== Link ($settings): packets sent and dropped by each end's qdisc"
for end in "$server_ns $server_if" "$client_ns $client_if"; do
    read -r ns dev <<<"$end"
    ip netns exec "$ns" tc -s qdisc show dev "$dev" | awk -v dev="$dev" '/Sent/ { print "  " dev ": " $0 }'
done
echo "== Results ($settings)"
printf '  %s\n' "${results[@]}"
[ "$failures" -eq 0 ] || { echo "FAIL lossy network: $failures failed" >&2; exit 1; }
echo "PASS lossy network"
