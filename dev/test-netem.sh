#!/usr/bin/env bash
# The HTTP/2 transport over a slow, lossy network: two network namespaces of its own, joined by a veth pair
# with `tc netem` on both ends (delay, jitter, loss, reordering) or, where the kernel has no netem qdisc, by
# the same impairments in user space (dev/netem-tun.py: a TUN device in each namespace, every packet forwarded
# between them delayed, jittered, lost or reordered independently). interop-server runs in one namespace and
# Courier's clients in the other. Checks, each timed:
#   - every interop case (interop-client --test_case all: large_unary, client/server streaming, ping_pong,
#     timeout_on_sleeping_server, cancel_after_begin, ...) passes;
#   - a large transfer arrives intact (interop-soak --mode transfer: a server stream and a client stream of
#     --megabytes each, then a bidirectional stream);
#   - a 1 s deadline on a sleeping server ends DEADLINE_EXCEEDED on time (--mode deadline);
#   - client keepalive (10 s, 5 s timeout) keeps a stream quiet for 22 s alive (--mode keepalive), and
#     detects a dead peer when the server's link goes down mid-call: UNAVAILABLE in 14 to 20 s (dead_peer).
#
#   ./dev/test-netem.sh [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT] [--megabytes N]
#                       [--userspace | --plain | --plain-if-no-netem] [--skip-build]
#
# Default: delay 40ms 10ms loss 3% reorder 5%, each way; a 2 MB transfer. Needs root and iproute2; without
# namespaces it prints SKIP and exits 0. --userspace: the user-space netem even where the qdisc exists.
# Without either netem it prints SKIP too, unless --plain-if-no-netem (what dev/test.sh passes): then the
# checks run over a plain veth, so that the namespace path still runs. --plain: no netem at all.
set -euo pipefail
cd "$(dirname "$0")/.."

delay=40
jitter=10
loss=3
reorder=5
megabytes=2
plain=0
plain_if_no_netem=0
userspace=0
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
        --userspace) userspace=1; shift ;;
        --skip-build) build=0; shift ;;
        *) sed -n '2,21p' "$0" >&2; exit 2 ;;
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
netem_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then  # its last connection is dead (dead_peer): no graceful shutdown
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$netem_pid" ]; then
        kill "$netem_pid" 2>/dev/null || true
        wait "$netem_pid" 2>/dev/null || true
    fi
    ip netns del "$server_ns" 2>/dev/null || true  # deleting a namespace deletes its end of the veth
    ip netns del "$client_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$server_ns" 2>"$work/error" || skip "cannot create a network namespace ($(cat "$work/error"))"
ip netns add "$client_ns"
for ns in "$server_ns" "$client_ns"; do ip -n "$ns" link set lo up; done
# Addresses and up, once the link's two ends exist in their namespaces.
address_link() {
    ip -n "$server_ns" addr add "$server_address/30" dev "$server_if"
    ip -n "$client_ns" addr add 10.77.0.2/30 dev "$client_if"
    ip -n "$server_ns" link set "$server_if" up
    ip -n "$client_ns" link set "$client_if" up
}
make_veth() {
    ip link add "$server_if" type veth peer name "$client_if"
    ip link set "$server_if" netns "$server_ns"
    ip link set "$client_if" netns "$client_ns"
    address_link
}
# The same impairments in user space (dev/netem-tun.py): a TUN device in each namespace, packets forwarded
# between them with the delay, jitter, loss and reordering applied. Used where the kernel has no netem qdisc.
start_userspace_netem() {
    [ -c /dev/net/tun ] || { echo "no /dev/net/tun" >"$work/error"; return 1; }
    command -v python3 >/dev/null || { echo "no python3" >"$work/error"; return 1; }
    python3 dev/netem-tun.py --server-ns "$server_ns" --server-if "$server_if" --client-ns "$client_ns" \
        --client-if "$client_if" --delay "$delay" --jitter "$jitter" --loss "$loss" --reorder "$reorder" \
        --ready "$work/netem.ready" >"$work/netem.log" 2>&1 &
    netem_pid=$!
    for _ in $(seq 100); do  # up to 10 s: the file is the readiness signal
        [ -f "$work/netem.ready" ] && break
        kill -0 "$netem_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -f "$work/netem.ready" ]; then
        kill "$netem_pid" 2>/dev/null || true
        wait "$netem_pid" 2>/dev/null || true
        netem_pid=""
        tr -d '\n' <"$work/netem.log" >"$work/error"
        return 1
    fi
    address_link
}

netem="delay ${delay}ms ${jitter}ms loss ${loss}% reorder ${reorder}%"
if [ "$plain" -eq 1 ]; then
    make_veth
    settings="plain veth (--plain: no netem)"
elif [ "$userspace" -eq 0 ] && make_veth &&
    ip netns exec "$server_ns" tc qdisc add dev "$server_if" root netem $netem 2>"$work/error"; then
    ip netns exec "$client_ns" tc qdisc add dev "$client_if" root netem $netem
    settings="netem $netem, on both ends of a veth pair"
else
    [ "$userspace" -eq 1 ] || echo "== tc netem is unavailable here ($(tr -d '\n' <"$work/error")): netem in user space"
    ip -n "$server_ns" link del "$server_if" 2>/dev/null || true  # the veth, if it was made
    if start_userspace_netem; then
        settings="user-space netem (dev/netem-tun.py) $netem, each way, between TUN devices"
    elif [ "$plain_if_no_netem" -eq 1 ]; then
        echo "SKIP lossy network: neither tc netem nor a TUN device works here ($(cat "$work/error")); the checks run without loss"
        make_veth
        settings="plain veth (netem and TUN unavailable)"
    else
        skip "neither tc netem nor a TUN device works here ($(cat "$work/error"))"
    fi
fi
echo "== Namespaces $server_ns and $client_ns, link $server_if/$client_if: $settings"

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

if [ -n "$netem_pid" ]; then
    echo "== Link ($settings): packets forwarded, lost and reordered each way"
    kill "$netem_pid"
    wait "$netem_pid" || true
    netem_pid=""
    sed 's/^/  /' "$work/netem.log"
else
    echo "== Link ($settings): packets sent and dropped by each end's qdisc"
    for end in "$server_ns $server_if" "$client_ns $client_if"; do
        read -r ns dev <<<"$end"
        ip netns exec "$ns" tc -s qdisc show dev "$dev" | awk -v dev="$dev" '/Sent/ { print "  " dev ": " $0 }'
    done
fi
echo "== Results ($settings)"
printf '  %s\n' "${results[@]}"
[ "$failures" -eq 0 ] || { echo "FAIL lossy network: $failures failed" >&2; exit 1; }
echo "PASS lossy network"
