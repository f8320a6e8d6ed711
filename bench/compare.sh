#!/usr/bin/env bash
# The same workloads, in one run, against kinesin, ferrokinesis and kinesalite; writes the results
# table (with ratios) into BENCHMARKS.md between the `results` markers.
#
#   bash bench/compare.sh                       # everything, 10 s per timed workload
#   BENCH_DURATION=3s BENCH_SERVERS="kinesin" bash bench/compare.sh
#
# Servers run one at a time (never side by side on the 2 cores), each on its own port, each fresh:
#   kinesin       release build, --ephemeral, default --durability fsync, --limits off
#   ferrokinesis  0.7.0 from crates.io, in memory (its default; it has no fsync mode per request)
#   kinesalite    3.3.3 from npm, in memory (its default)
# The client is always `kinesin bench` (same load generator, same connections, same bodies).
#
# Environment: BENCH_DURATION (10s), BENCH_GET_RECORDS (200000), BENCH_CONNECTIONS (16),
# BENCH_WORKLOADS ("put-1k put-100b get latency many-shards"),
# BENCH_SERVERS ("kinesin ferrokinesis kinesalite"), KINESIN_BIN (default: build target/release),
# BENCH_NO_WRITE=1 (print the table, leave BENCHMARKS.md alone).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
TOOLS="$ROOT/bench/.tools"
OUT="$ROOT/bench/results"
DURATION="${BENCH_DURATION:-10s}"
GET_RECORDS="${BENCH_GET_RECORDS:-200000}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
WORKLOADS="${BENCH_WORKLOADS:-put-1k put-100b get latency many-shards}"
SERVERS="${BENCH_SERVERS:-kinesin ferrokinesis kinesalite}"
FERROKINESIS_VERSION=0.7.0
KINESALITE_VERSION=3.3.3
# Bound on how long a server may take to accept connections.
START_TIMEOUT_S=30

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

if [ -z "${KINESIN_BIN:-}" ]; then
    cargo build --release -p kinesin
    KINESIN_BIN="$ROOT/target/release/kinesin"
fi

mkdir -p "$TOOLS" "$OUT"
for s in $SERVERS; do
    case "$s" in
    ferrokinesis)
        if [ ! -x "$TOOLS/bin/ferrokinesis" ] ||
            ! grep -q "ferrokinesis $FERROKINESIS_VERSION " "$TOOLS/.crates.toml" 2>/dev/null; then
            cargo install ferrokinesis --version "$FERROKINESIS_VERSION" --root "$TOOLS" --locked ||
                cargo install ferrokinesis --version "$FERROKINESIS_VERSION" --root "$TOOLS"
        fi
        ;;
    kinesalite)
        if [ ! -x "$TOOLS/node_modules/.bin/kinesalite" ]; then
            npm install --prefix "$TOOLS" "kinesalite@$KINESALITE_VERSION"
        fi
        ;;
    esac
done

port_of() {
    case "$1" in
    kinesin) echo 4610 ;;
    ferrokinesis) echo 4611 ;;
    kinesalite) echo 4612 ;;
    esac
}

SERVER_PID=""
start_server() {
    local name="$1" port
    port="$(port_of "$name")"
    case "$name" in
    kinesin)
        "$KINESIN_BIN" serve --ephemeral --listen "127.0.0.1:$port" --create-stream-ms 0 \
            --shard-limit 5000 --limits off --log-level warn >"$OUT/$name.log" 2>&1 &
        ;;
    ferrokinesis)
        "$TOOLS/bin/ferrokinesis" --port "$port" --create-stream-ms 0 --shard-limit 5000 \
            --log-level warn >"$OUT/$name.log" 2>&1 &
        ;;
    kinesalite)
        node "$TOOLS/node_modules/kinesalite/cli.js" --port "$port" --createStreamMs 0 \
            --shardLimit 5000 >"$OUT/$name.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "$name did not start; log:" >&2
            cat "$OUT/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

LOAD_AT_START="$(cut -d" " -f1-3 /proc/loadavg)"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
for s in $SERVERS; do
    echo "==> $s"
    start_server "$s"
    for w in $WORKLOADS; do
        args=(--endpoint "http://127.0.0.1:$(port_of "$s")" --workload "$w" --label "$s"
            --connections "$CONNECTIONS" --stream "bench-$w-$RANDOM" --json)
        if [ "$w" = get ]; then
            args+=(--records "$GET_RECORDS")
        else
            args+=(--duration "$DURATION")
        fi
        echo "--- $s $w"
        if line="$("$KINESIN_BIN" bench "${args[@]}" | tail -n 1)" && [ -n "$line" ]; then
            echo "$line" >>"$RESULTS"
        else
            printf '{"label":"%s","workload":"%s","first_error":"bench failed (see output above)"}\n' \
                "$s" "$w" >>"$RESULTS"
        fi
    done
    stop_server
done

machine="$(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); \
$(nproc) cores; $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start: $LOAD_AT_START"
# With KINESIN_BIN from elsewhere, say which source it was built from (KINESIN_COMMIT).
commit="${KINESIN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
python3 "$ROOT/bench/render.py" "$RESULTS" \
    --command "BENCH_DURATION=$DURATION BENCH_GET_RECORDS=$GET_RECORDS BENCH_CONNECTIONS=$CONNECTIONS bash bench/compare.sh" \
    --machine "$machine" --commit "$commit" \
    ${BENCH_NO_WRITE:+--print-only} --markdown "$ROOT/BENCHMARKS.md"
