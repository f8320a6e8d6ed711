#!/usr/bin/env bash
# Profile kinesin under one bench workload with perf (cpu-clock sampling, DWARF call graphs).
#   bash bench/profile.sh                    # put-1k for 10 s
#   BENCH_WORKLOAD=many-shards BENCH_DURATION=5s bash bench/profile.sh
# Writes bench/results/perf-<workload>.data and prints the top functions (self time), the top
# inclusive entries, and the fsync/fdatasync/write syscall counts seen during the same kind of run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
OUT="$ROOT/bench/results"
WORKLOAD="${BENCH_WORKLOAD:-put-1k}"
DURATION="${BENCH_DURATION:-10s}"
PORT=4620
# perf's sampling rate: low enough that DWARF stacks for 2 cores stay a few hundred MB.
PERF_HZ=499
mkdir -p "$OUT"
# The `profiling` profile: release code generation with debug info (the release profile has
# none), so perf can name functions and unwind DWARF call graphs.
if [ -z "${KINESIN_BIN:-}" ]; then
    cargo build --profile profiling -p kinesin
    KINESIN_BIN="$ROOT/target/profiling/kinesin"
fi

"$KINESIN_BIN" serve --ephemeral --listen "127.0.0.1:$PORT" --create-stream-ms 0 --shard-limit 5000 \
    --limits off --log-level warn >"$OUT/profile-server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done

# Warm up (stream creation, first segment files) outside the profile.
"$KINESIN_BIN" bench --endpoint "http://127.0.0.1:$PORT" --workload "$WORKLOAD" --duration 1s --json >/dev/null

DATA="$OUT/perf-$WORKLOAD.data"
perf record -F "$PERF_HZ" -e cpu-clock --call-graph dwarf,16384 -p "$SERVER_PID" -o "$DATA" \
    2>"$OUT/perf-record.log" &
PERF_PID=$!
sleep 0.5
"$KINESIN_BIN" bench --endpoint "http://127.0.0.1:$PORT" --workload "$WORKLOAD" --duration "$DURATION"
kill -INT "$PERF_PID"
wait "$PERF_PID" || true

# `head` closes the pipe early; that is not a failure of perf.
set +o pipefail
echo "==> self time, top 40"
perf report -i "$DATA" --no-children --stdio --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
echo "==> inclusive time, top 60"
perf report -i "$DATA" --children --stdio --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60

if command -v strace >/dev/null 2>&1; then
    echo "==> syscalls during a $DURATION run (strace -c; slows the server, counts only)"
    strace -f -c -e trace=fdatasync,fsync,write,writev,pwrite64,read,recvfrom,sendto -p "$SERVER_PID" \
        -o "$OUT/strace-$WORKLOAD.txt" &
    STRACE_PID=$!
    sleep 0.5
    "$KINESIN_BIN" bench --endpoint "http://127.0.0.1:$PORT" --workload "$WORKLOAD" --duration "$DURATION" \
        --json | tail -n 1
    kill -INT "$STRACE_PID"
    wait "$STRACE_PID" || true
    cat "$OUT/strace-$WORKLOAD.txt"
fi
