"""The issue's acceptance script: 10,000 records across shards, read back in order per shard with
every iterator type, restart, read again (and once more after kill -9)."""

import time
from datetime import datetime, timedelta, timezone

from kutil import make_client, md5_hash_key, read_shard, shard_for_hash, shard_id, unique_name, wait_status

SHARDS = 4
TOTAL = 10_000
BATCH = 500
FAST = ["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0"]


def write_all(k, name, shards):
    """Write TOTAL records in batches; returns per-shard lists of (seq, data, pk, batch_no) and the
    wall-clock instant between the two halves."""
    per_shard = {s["ShardId"]: [] for s in shards}
    mark = None
    for b in range(TOTAL // BATCH):
        if b == (TOTAL // BATCH) // 2:
            time.sleep(1.2)
            mark = datetime.now(timezone.utc)
            time.sleep(0.2)
        entries = [
            {"PartitionKey": f"user-{b}-{i}", "Data": f"payload-{b * BATCH + i}".encode()} for i in range(BATCH)
        ]
        pending = entries
        while pending:
            r = k.put_records(StreamName=name, Records=pending)
            retry = []
            for e, res in zip(pending, r["Records"]):
                if "SequenceNumber" in res:
                    assert res["ShardId"] == shard_for_hash(shards, md5_hash_key(e["PartitionKey"]))
                    per_shard[res["ShardId"]].append((int(res["SequenceNumber"]), e["Data"], e["PartitionKey"], b))
                else:
                    assert res["ErrorCode"] in {"ProvisionedThroughputExceededException", "InternalFailure"}, res
                    retry.append(e)
            pending = retry
            if pending:
                time.sleep(0.25)
    for sid in per_shard:
        per_shard[sid].sort()
    return per_shard, mark


def as_tuples(records, batch_of):
    return [(int(r["SequenceNumber"]), r["Data"], r["PartitionKey"], batch_of[r["Data"]]) for r in records]


def verify(k, name, expected, mark, full=True):
    batch_of = {data: b for lst in expected.values() for (_, data, _, b) in lst}
    total = 0
    for sid, exp in expected.items():
        assert exp, f"{sid} received no records - partition keys are not spread over shards"
        total += len(exp)
        seqs = [e[0] for e in exp]
        assert len(set(seqs)) == len(seqs)

        # TRIM_HORIZON, paged with a Limit
        got = as_tuples(read_shard(k, name, sid, "TRIM_HORIZON", limit=700), batch_of)
        assert got == exp, f"TRIM_HORIZON mismatch on {sid}"
        if not full:
            continue
        # TRIM_HORIZON in one call (default limit 10,000)
        got = as_tuples(read_shard(k, name, sid, "TRIM_HORIZON"), batch_of)
        assert got == exp

        mid = len(exp) // 2
        mid_seq = str(exp[mid][0])
        got = as_tuples(read_shard(k, name, sid, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=mid_seq), batch_of)
        assert got == exp[mid:], f"AT_SEQUENCE_NUMBER mismatch on {sid}"
        got = as_tuples(read_shard(k, name, sid, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=mid_seq), batch_of)
        assert got == exp[mid + 1:], f"AFTER_SEQUENCE_NUMBER mismatch on {sid}"

        half = (TOTAL // BATCH) // 2
        got = as_tuples(read_shard(k, name, sid, "AT_TIMESTAMP", Timestamp=mark), batch_of)
        assert got == [e for e in exp if e[3] >= half], f"AT_TIMESTAMP mismatch on {sid}"
        old = datetime.now(timezone.utc) - timedelta(hours=1)
        got = as_tuples(read_shard(k, name, sid, "AT_TIMESTAMP", Timestamp=old), batch_of)
        assert got == exp

        # LATEST: nothing until something new arrives
        it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
        r = k.get_records(ShardIterator=it)
        assert r["Records"] == []
        assert r["MillisBehindLatest"] == 0
    assert total == TOTAL


def add_latest_probe(k, name, shards, expected):
    """Put one record per shard through a LATEST iterator and fold it into `expected`."""
    for s in shards:
        sid = s["ShardId"]
        it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
        data = f"latest-{sid}".encode()
        r = k.put_record(StreamName=name, PartitionKey="latest", Data=data,
                         ExplicitHashKey=s["HashKeyRange"]["StartingHashKey"])
        assert r["ShardId"] == sid
        got = k.get_records(ShardIterator=it)["Records"]
        assert [(g["SequenceNumber"], g["Data"]) for g in got] == [(r["SequenceNumber"], data)]
        expected[sid].append((int(r["SequenceNumber"]), data, "latest", 10**6))


def test_acceptance_10k_records_restart(server_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = server_factory(data_dir=data, args=FAST)
    k = make_client(srv.endpoint, timeout=120)
    name = unique_name("accept")
    k.create_stream(StreamName=name, ShardCount=SHARDS)
    wait_status(k, name)
    shards = k.list_shards(StreamName=name)["Shards"]
    assert len(shards) == SHARDS

    expected, mark = write_all(k, name, shards)
    verify(k, name, expected, mark)
    add_latest_probe(k, name, shards, expected)

    assert srv.stop() == 0, srv.log_text()
    srv.start()
    k = make_client(srv.endpoint, timeout=120)
    wait_status(k, name)
    assert k.list_shards(StreamName=name)["Shards"] == shards
    # After restart every record, including the LATEST probes, is still there in order.
    batch_of = {d: b for lst in expected.values() for (_, d, _, b) in lst}
    for sid, exp in expected.items():
        assert as_tuples(read_shard(k, name, sid, "TRIM_HORIZON", limit=1000), batch_of) == exp
        mid_seq = str(exp[len(exp) // 2][0])
        got = as_tuples(read_shard(k, name, sid, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=mid_seq), batch_of)
        assert got == exp[len(exp) // 2:]
        got = as_tuples(read_shard(k, name, sid, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=mid_seq), batch_of)
        assert got == exp[len(exp) // 2 + 1:]
        got = as_tuples(read_shard(k, name, sid, "AT_TIMESTAMP", Timestamp=mark), batch_of)
        assert got == [e for e in exp if e[3] >= (TOTAL // BATCH) // 2]
    add_latest_probe(k, name, shards, expected)

    # kill -9 and read once more
    srv.kill()
    srv.start()
    k = make_client(srv.endpoint, timeout=120)
    wait_status(k, name)
    batch_of = {d: b for lst in expected.values() for (_, d, _, b) in lst}
    for sid, exp in expected.items():
        assert as_tuples(read_shard(k, name, sid, "TRIM_HORIZON"), batch_of) == exp
