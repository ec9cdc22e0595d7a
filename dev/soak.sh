#!/usr/bin/env bash
# A bounded soak on loopback: ping-server (ping.PingService: all four RPC kinds), once in cleartext and once
# over TLS (a throwaway test PKI), under interop-soak's mixed load (every kind; statuses asked for;
# cancellations; deadlines that expire; long-lived clients beside clients that connect and disconnect),
# sampling each server's RSS, open file descriptors, threads and its open connections and live streams
# (`PING_STATS_FILE`). `--server interop` soaks interop-server (grpc.testing.TestService) the same way.
#
#   ./dev/soak.sh [--minutes N | --seconds N] [--workers N] [--interval S] [--rss-growth PERCENT]
#                 [--server ping|interop] [--out DIR] [--skip-build]
#
# Default: 10 minutes, 8 workers, a sample every 5 s, into .build/soak-<time>/ (soak.csv, the logs).
# Passes only if every RPC ended with the status its scenario expects (the table), and after the warm-up
# (the first 20 % of the load, at most 60 s): RSS stays within PERCENT (default 25) of its value at the
# end of the warm-up; threads never exceed the warm-up's maximum by more than 2, during the load or after it
# (a pool thread started late stays; a leak grows past that); after the load, every connection and stream
# closes (both counts 0) and the file descriptors return to their count before the load (± 2); both servers
# then shut down gracefully (exit 0).
# --skip-build uses the binaries of the last debug build (dev/test.sh builds them with warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
workers=8
interval=5
rss_growth=25
out=""
build=1
server=ping
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) seconds=$(($2 * 60)); shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --rss-growth) rss_growth=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --server) server=$2; shift 2 ;;
        --skip-build) build=0; shift ;;
        *) sed -n '2,18p' "$0" >&2; exit 2 ;;
    esac
done
[ "$seconds" -gt 0 ] || { echo "soak: the duration must be positive" >&2; exit 2; }
case "$server" in
    ping) server_tool=ping-server ;;
    interop) server_tool=interop-server ;;
    *) echo "soak: --server is ping or interop" >&2; exit 2 ;;
esac

if [ "$build" -eq 1 ]; then
    echo "== Building $server_tool and interop-soak (debug)"
    swift build --product "$server_tool" -Xswiftc -warnings-as-errors
    swift build --product interop-soak -Xswiftc -warnings-as-errors
fi
bin=$(swift build --show-bin-path)
for tool in "$server_tool" interop-soak; do
    [ -x "$bin/$tool" ] || { echo "soak: $bin/$tool is missing (build it, or drop --skip-build)" >&2; exit 1; }
done

out=${out:-.build/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/courier-soak.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
./dev/make-test-certs.sh "$work/pki" >/dev/null

# Starts a server on a free loopback port (TLS when the second argument is "tls"); sets its pid and port in
# ${name}_pid and ${name}_port.
start_server() {
    local name=$1 tls=${2:-}
    if [ "$server" = ping ]; then
        local tls_env=()
        [ "$tls" = tls ] && tls_env=(PING_TLS_CERT="$work/pki/server.pem" PING_TLS_KEY="$work/pki/server.key")
        env PORT=0 PING_HOST=127.0.0.1 PING_STATS_FILE="$work/$name.stats" PING_DRAIN_SECONDS=5 "${tls_env[@]}" \
            "$bin/ping-server" >"$out/$name.log" 2>&1 &
    else
        local tls_flags=()
        [ "$tls" = tls ] && tls_flags=(--use_tls --tls_cert_file "$work/pki/server.pem" --tls_key_file "$work/pki/server.key")
        "$bin/interop-server" --host 127.0.0.1 --port 0 --stats_file "$work/$name.stats" "${tls_flags[@]}" \
            >"$out/$name.log" 2>&1 &
    fi
    local pid=$!
    pids+=("$pid")
    local port=""
    for _ in $(seq 300); do  # up to 30 s: the line is the readiness signal
        port=$(sed -n -e 's/^interop-server listening on ipv4:127\.0\.0\.1:\([0-9]*\).*/\1/p' \
            -e 's/.*ping-server: address=ipv4:127\.0\.0\.1:\([0-9]*\) .*listening$/\1/p' "$out/$name.log")
        [ -n "$port" ] && [ -s "$work/$name.stats" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$out/$name.log" >&2; echo "soak: $name exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { echo "soak: $name did not start listening" >&2; exit 1; }
    printf -v "${name}_pid" '%s' "$pid"
    printf -v "${name}_port" '%s' "$port"
}
start_server h2c
start_server tls tls
echo "== $server_tool: h2c on 127.0.0.1:$h2c_port (pid $h2c_pid), TLS on 127.0.0.1:$tls_port (pid $tls_pid)"

csv="$out/soak.csv"
echo "elapsed_s,phase,server,rss_kb,fds,threads,connections,streams" >"$csv"
t0=$(date +%s.%N)
# One row per server: /proc for the process, the stats file for connections and streams.
sample() {
    local phase=$1 name pid now rss threads fds stats
    now=$(date +%s.%N)
    for name in h2c tls; do
        pid=${name}_pid
        pid=${!pid}
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
        stats=$(cat "$work/$name.stats")
        stats=${stats//connections=/}
        stats=${stats// streams=/,}
        printf '%s,%s,%s,%s,%s,%s,%s\n' "$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')" "$phase" "$name" "$rss" "$fds" "$threads" \
            "$stats" >>"$csv"
    done
}

sample idle
sleep 1
sample idle
echo "== Load: $workers workers for $seconds s (a sample every $interval s into $csv)"
"$bin/interop-soak" --mode load --service "$server" --server_port "$h2c_port" --tls_port "$tls_port" --ca_file "$work/pki/ca.pem" \
    --server_host_override foo.test.example.com --seconds "$seconds" --workers "$workers" >"$out/load.log" 2>&1 &
load_pid=$!
pids+=("$load_pid")
while kill -0 "$load_pid" 2>/dev/null; do
    sample load
    # Sleep in short steps so that the end of the load is seen within half a second.
    for _ in $(seq $((interval * 2))); do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.5
    done
done
load_status=0
wait "$load_pid" || load_status=$?
# After the load: wait (at most 20 s) for every connection and stream to close, then two idle samples.
for _ in $(seq 40); do
    sample drain
    [ "$(cat "$work/h2c.stats" "$work/tls.stats" | sort -u)" = "connections=0 streams=0" ] && break
    sleep 0.5
done
sleep 1
sample idle-after
sleep 1
sample idle-after

shutdown_status=0
for name in h2c tls; do
    pid=${name}_pid
    kill -TERM "${!pid}"
    code=0
    wait "${!pid}" || code=$?
    [ "$code" -eq 0 ] || { echo "soak: $name exited $code after SIGTERM" >&2; shutdown_status=1; }
done
pids=()  # all waited for

echo "== RPC statuses (interop-soak)"
cat "$out/load.log"
echo "== Samples"
python3 - "$csv" "$seconds" "$rss_growth" "$load_status" "$shutdown_status" <<'EOF'
import csv, sys
path, seconds, growth, load_status, shutdown_status = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = list(csv.DictReader(open(path)))
for row in rows:
    row["t"] = float(row["elapsed_s"])
    for key in ("rss_kb", "fds", "threads", "connections", "streams"):
        row[key] = int(row[key])
failures = []
if load_status != 0:
    failures.append(f"interop-soak exited {load_status} (an RPC ended otherwise than expected, or it failed)")
if shutdown_status != 0:
    failures.append("a server did not shut down gracefully")

def show(label, row):
    print(f"  {label:<11} t={row['t']:>7.1f}s  rss={row['rss_kb'] / 1024:7.1f} MiB  fds={row['fds']:>4}  "
          f"threads={row['threads']:>3}  connections={row['connections']:>3}  streams={row['streams']:>3}")

for server in ("h2c", "tls"):
    mine = [r for r in rows if r["server"] == server]
    idle = [r for r in mine if r["phase"] == "idle"]
    load = [r for r in mine if r["phase"] == "load"]
    after = [r for r in mine if r["phase"] == "idle-after"]
    drain = [r for r in mine if r["phase"] == "drain"]
    if not load or not after:
        failures.append(f"{server}: no samples under load or after it")
        continue
    warmup_end = load[0]["t"] + min(60.0, 0.2 * seconds)
    warm = [r for r in load if r["t"] <= warmup_end]
    steady = [r for r in load if r["t"] > warmup_end] or load[-1:]
    base = steady[0]
    print(f"{server}: {len(mine)} samples; warm-up until t={warmup_end:.1f}s")
    show("before", idle[-1])
    show("start", base)
    show("middle", steady[len(steady) // 2])
    show("end", steady[-1])
    show("after", after[-1])
    rss_limit = base["rss_kb"] * (1 + growth / 100)
    rss_max = max(r["rss_kb"] for r in steady)
    print(f"  rss: {base['rss_kb'] / 1024:.1f} MiB after the warm-up, at most {rss_max / 1024:.1f} MiB after it "
          f"({(rss_max / base['rss_kb'] - 1) * 100:+.1f} %; bound {growth:+.0f} %)")
    if rss_max > rss_limit:
        failures.append(f"{server}: RSS grew {(rss_max / base['rss_kb'] - 1) * 100:.1f} % after the warm-up")
    warm_threads = max(r["threads"] for r in warm + idle)
    if max(r["threads"] for r in steady) > warm_threads + 2:
        failures.append(f"{server}: threads rose above the warm-up's {warm_threads} + 2")
    if after[-1]["threads"] > warm_threads + 2:
        failures.append(f"{server}: {after[-1]['threads']} threads after the load, above the warm-up's {warm_threads} + 2")
    if abs(after[-1]["fds"] - idle[-1]["fds"]) > 2:
        failures.append(f"{server}: {after[-1]['fds']} file descriptors after the load, {idle[-1]['fds']} before")
    if drain[-1]["connections"] != 0 or drain[-1]["streams"] != 0 or after[-1]["streams"] != 0:
        failures.append(f"{server}: connections/streams did not return to 0 "
                        f"({drain[-1]['connections']}/{drain[-1]['streams']})")
    if max(r["streams"] for r in load) == 0:
        failures.append(f"{server}: no live stream was ever seen under load (is the counter wired?)")
for failure in failures:
    print(f"FAIL {failure}")
print("PASS soak" if not failures else "FAIL soak")
sys.exit(1 if failures else 0)
EOF
