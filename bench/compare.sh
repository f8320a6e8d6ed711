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
#
# Before/after mode: two kinesin builds, same workloads, in the same minutes:
#
#   bash bench/compare.sh --before /work/wt/kinesin-before --after target/release/kinesin
#   BENCH_BEFORE=old/kinesin BENCH_AFTER=new/kinesin bash bench/compare.sh     # the same
#
# BENCH_ROUNDS (3) rounds; in each, every workload runs on both builds back to back, the order
# alternating from round to round (before, after; then after, before), so a change in the
# machine's load hits both alike. Every run gets a fresh `serve --ephemeral` (flags as above).
# The load generator is always the after build's `kinesin bench` (BENCH_CLIENT to override), so
# both builds see the same client. BENCH_WORKLOADS defaults to "put-1k put-100b get many-shards
# reshard-latency"; BENCH_BEFORE_LABEL / BENCH_AFTER_LABEL name the builds in the table (e.g.
# main@292e118). Prints, per workload and figure, before and after as median (min–max) over the
# rounds, after ÷ before of the medians, and whether the two ranges overlap (then the
# difference is within the run-to-run noise); writes that table into BENCHMARKS.md between the
# `ab-results` markers unless BENCH_NO_WRITE=1. Raw lines: bench/results/ab.jsonl.
set -euo pipefail

BEFORE="${BENCH_BEFORE:-}"
AFTER="${BENCH_AFTER:-}"
while [ $# -gt 0 ]; do
    case "$1" in
    --before) BEFORE="${2:?--before needs a kinesin binary}"; shift 2 ;;
    --before=*) BEFORE="${1#*=}"; shift ;;
    --after) AFTER="${2:?--after needs a kinesin binary}"; shift 2 ;;
    --after=*) AFTER="${1#*=}"; shift ;;
    -h | --help)
        sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "compare.sh: unknown argument $1 (expected --before BIN --after BIN, or none)" >&2
        exit 2
        ;;
    esac
done
if [ -n "$BEFORE$AFTER" ] && { [ -z "$BEFORE" ] || [ -z "$AFTER" ]; }; then
    echo "compare.sh: --before and --after go together (got before='$BEFORE' after='$AFTER')" >&2
    exit 2
fi
for b in "$BEFORE" "$AFTER"; do
    if [ -n "$b" ] && [ ! -x "$b" ]; then
        echo "compare.sh: $b is not an executable kinesin binary" >&2
        exit 2
    fi
done
# Absolute paths: the script changes directory below.
[ -n "$BEFORE" ] && BEFORE="$(cd "$(dirname "$BEFORE")" && pwd)/$(basename "$BEFORE")"
[ -n "$AFTER" ] && AFTER="$(cd "$(dirname "$AFTER")" && pwd)/$(basename "$AFTER")"

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

if [ -n "$AFTER" ]; then
    KINESIN_BIN="$AFTER"
    SERVERS=""
elif [ -z "${KINESIN_BIN:-}" ]; then
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
    before | after) echo 4613 ;;
    esac
}

SERVER_PID=""
start_server() {
    local name="$1" port
    port="$(port_of "$name")"
    case "$name" in
    kinesin | before | after)
        local bin="$KINESIN_BIN"
        [ "$name" = before ] && bin="$BEFORE"
        [ "$name" = after ] && bin="$AFTER"
        "$bin" serve --ephemeral --listen "127.0.0.1:$port" --create-stream-ms 0 \
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
machine_line() {
    echo "$(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); \
$(nproc) cores; $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start: $LOAD_AT_START, at end: $(cut -d" " -f1-3 /proc/loadavg)"
}

# One `kinesin bench` run against the server named $1 (already started), workload $2; appends
# its JSON line (or a failure line) to $3. $4: the round (before/after mode), else empty.
run_workload() {
    local s="$1" w="$2" results="$3" round="${4:-}" line
    local args=(--endpoint "http://127.0.0.1:$(port_of "$s")" --workload "$w" --label "$s"
        --connections "$CONNECTIONS" --stream "bench-$w-$RANDOM" --json)
    if [ "$w" = get ]; then
        args+=(--records "$GET_RECORDS")
    else
        args+=(--duration "$DURATION")
    fi
    echo "--- $s $w${round:+ (round $round)}"
    if line="$("$CLIENT" bench "${args[@]}" | tail -n 1)" && [ -n "$line" ]; then
        [ -n "$round" ] && line="${line%\}},\"round\":$round}"
        echo "$line" >>"$results"
    else
        printf '{"label":"%s","workload":"%s",%s"first_error":"bench failed (see output above)"}\n' \
            "$s" "$w" "${round:+\"round\":$round,}" >>"$results"
    fi
}
CLIENT="${BENCH_CLIENT:-$KINESIN_BIN}"

if [ -n "$AFTER" ]; then
    AB_WORKLOADS="${BENCH_WORKLOADS:-put-1k put-100b get many-shards reshard-latency}"
    ROUNDS="${BENCH_ROUNDS:-3}"
    for w in $AB_WORKLOADS; do
        if ! "$CLIENT" bench --help | grep -- "$w" >/dev/null; then
            echo "compare.sh: the client $CLIENT has no workload $w (set BENCH_CLIENT)" >&2
            exit 2
        fi
    done
    RESULTS="$OUT/ab.jsonl"
    : >"$RESULTS"
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
        for w in $AB_WORKLOADS; do
            for side in $order; do
                start_server "$side"
                run_workload "$side" "$w" "$RESULTS" "$round"
                stop_server
            done
        done
    done
    python3 "$ROOT/bench/render_ab.py" "$RESULTS" \
        --command "BENCH_ROUNDS=$ROUNDS BENCH_DURATION=$DURATION BENCH_GET_RECORDS=$GET_RECORDS BENCH_CONNECTIONS=$CONNECTIONS bash bench/compare.sh --before BEFORE --after AFTER" \
        --machine "$(machine_line)" \
        --before "${BENCH_BEFORE_LABEL:-$BEFORE}" --after "${BENCH_AFTER_LABEL:-$AFTER}" \
        ${BENCH_NO_WRITE:+--print-only} --markdown "$ROOT/BENCHMARKS.md"
    exit 0
fi

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
for s in $SERVERS; do
    echo "==> $s"
    start_server "$s"
    for w in $WORKLOADS; do
        run_workload "$s" "$w" "$RESULTS"
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
