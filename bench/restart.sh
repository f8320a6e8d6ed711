#!/usr/bin/env bash
# Restart time on a large data dir: fill a data dir with KINESIN_RESTART_GIB GiB (default 10) of
# 1 KiB records with `kinesin bench`, then measure how long the server takes, from exec to
# serving reads at both ends of every shard, after a graceful stop and after kill -9.
#   bash bench/restart.sh                       # 10 GiB in ./bench/.restart-data (kept for reruns)
#   KINESIN_RESTART_GIB=1 bash bench/restart.sh # quicker
#   KINESIN_RESTART_DIR=/big/disk/dir bash bench/restart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ -z "${KINESIN_BIN:-}" ]; then
    cargo build --release -p kinesin
    KINESIN_BIN="$PWD/target/release/kinesin"
fi
GIB="${KINESIN_RESTART_GIB:-10}"
DIR="${KINESIN_RESTART_DIR:-$PWD/bench/.restart-data}"
PORT="${KINESIN_RESTART_PORT:-4599}"
EP="http://127.0.0.1:$PORT"
mkdir -p "$DIR"

start() { "$KINESIN_BIN" serve --data-dir "$DIR" --listen "127.0.0.1:$PORT" --limits off >>"$DIR.log" 2>&1 & echo $!; }

# Time from exec until DescribeStreamSummary, ListShards and a GetRecords at TRIM_HORIZON and at
# LATEST on every shard all answer 200, polled from one Python process (no per-call process start).
measure() {
    python3 - "$KINESIN_BIN" "$DIR" "$PORT" <<'PY'
import http.client, json, subprocess, sys, time
binary, data_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(op, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/", json.dumps(body), {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202." + op,
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=00"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status != 200:
        raise RuntimeError(f"{op}: {r.status} {data[:200]!r}")
    return json.loads(data)
t0 = time.monotonic()
log = open(data_dir + ".log", "ab")
proc = subprocess.Popen([binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
                         "--limits", "off"], stdout=log, stderr=subprocess.STDOUT)
while True:
    try:
        call("DescribeStreamSummary", {"StreamName": "bench-restart"})
        break
    except (OSError, RuntimeError):
        time.sleep(0.005)
t_api = time.monotonic() - t0
for sh in call("ListShards", {"StreamName": "bench-restart"})["Shards"]:
    for t in ("TRIM_HORIZON", "LATEST"):
        it = call("GetShardIterator", {"StreamName": "bench-restart", "ShardId": sh["ShardId"],
                                       "ShardIteratorType": t})["ShardIterator"]
        call("GetRecords", {"ShardIterator": it, "Limit": 10})
print(proc.pid, f"{t_api:.3f}", f"{time.monotonic() - t0:.3f}")
PY
}

have=$(du -sb "$DIR" | cut -f1)
want=$((GIB * 1024 * 1024 * 1024))
if [ "$have" -lt "$want" ]; then
    pid=$(start)
    until curl -s -o /dev/null "$EP/"; do sleep 0.05; done
    need=$(((want - have) / 1024 + 1))
    echo "filling $DIR with $need more 1 KiB records..."
    "$KINESIN_BIN" bench --endpoint "$EP" --workload put-1k --stream bench-restart --shards 4 \
        --records "$need" --connections 8 >&2
    kill -TERM "$pid"
    wait "$pid" || true
fi
echo "data dir: $(du -sh "$DIR" | cut -f1) in $(find "$DIR" -type f | wc -l) files"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null && echo "(page cache dropped)" || true; }

drop_caches
read -r pid api secs < <(measure)
echo "restart after a graceful stop: API answering in ${api} s, reads served at both ends of every shard in ${secs} s"
# Crash under load: kill -9 while 8 connections are writing, then restart cold.
"$KINESIN_BIN" bench --endpoint "$EP" --workload put-1k --stream bench-restart --duration 3s \
    --connections 8 >/dev/null 2>&1 &
bench=$!
sleep 2
kill -9 "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
wait "$bench" 2>/dev/null || true
drop_caches
read -r pid api secs < <(measure)
echo "restart after kill -9 under load: API answering in ${api} s, reads served at both ends of every shard in ${secs} s"
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
