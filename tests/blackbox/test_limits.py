"""Throughput and call-rate limits on dedicated servers started with `--limits aws`: one shard under
overload accepts 1,000 records/s and 1 MiB/s within ±10% once its one-second burst is spent, and no
acknowledged record is lost; PutRecord / PutRecords / GetRecords throttle with AWS's error and
message; control-plane rates answer LimitExceededException; `--limits off` admits everything."""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from kutil import shard_id, unique_name

AWS = ["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0", "--limits", "aws"]
WARMUP_S, MEASURE_S = 1.5, 5.0


def overload(k, name, records_per_call, data, threads=3):
    """Offers far more than the shard takes; returns (response time, accepted, sequence numbers)."""
    log, lock = [], threading.Lock()
    t_end = time.time() + WARMUP_S + MEASURE_S

    def run(tid):
        n = 0
        while time.time() < t_end:
            recs = [{"PartitionKey": f"p{tid}-{n}-{i}", "Data": data, "ExplicitHashKey": "1"}
                    for i in range(records_per_call)]
            n += 1
            r = k.put_records(StreamName=name, Records=recs)
            ok = [x["SequenceNumber"] for x in r["Records"] if "SequenceNumber" in x]
            for x in r["Records"]:
                if "ErrorCode" in x:
                    assert x["ErrorCode"] == "ProvisionedThroughputExceededException"
            assert r["FailedRecordCount"] == records_per_call - len(ok)
            with lock:
                log.append((time.time(), ok))

    start = time.time()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return start, log


def measured_rate(start, log):
    lo, hi = start + WARMUP_S, start + WARMUP_S + MEASURE_S
    window = [len(ok) for t, ok in log if lo <= t < hi]
    return sum(window) / MEASURE_S


def read_all_sequence_numbers(k, name):
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen = set()
    while True:
        try:
            r = k.get_records(ShardIterator=it)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            time.sleep(0.25)
            continue
        seen.update(x["SequenceNumber"] for x in r["Records"])
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return seen
        it = r["NextShardIterator"]


@pytest.fixture
def aws_server(server_factory):
    return server_factory(ephemeral=True, args=AWS)


def test_records_per_second_under_overload(aws_server):
    k = aws_server.client()
    name = unique_name("rate")
    k.create_stream(StreamName=name, ShardCount=1)
    start, log = overload(k, name, 500, b"x")
    rate = measured_rate(start, log)
    print(f"accepted {rate:.0f} records/s")
    assert 900 <= rate <= 1100, rate
    acked = {s for _, ok in log for s in ok}
    assert acked <= read_all_sequence_numbers(k, name), "an acknowledged record is missing"


def test_bytes_per_second_under_overload(aws_server):
    k = aws_server.client()
    name = unique_name("bytes")
    k.create_stream(StreamName=name, ShardCount=1)
    data = b"b" * (64 * 1024 - 16)
    start, log = overload(k, name, 20, data)
    rate = measured_rate(start, log) * (len(data) + 16) / 2**20
    print(f"accepted {rate:.3f} MiB/s")
    assert 0.9 <= rate <= 1.1, rate
    acked = {s for _, ok in log for s in ok}
    assert acked <= read_all_sequence_numbers(k, name)


def test_put_record_throttle_error_and_get_records_rate(aws_server):
    k = aws_server.client()
    name = unique_name("thr")
    k.create_stream(StreamName=name, ShardCount=1)
    recs = [{"PartitionKey": "p", "Data": b"x"} for _ in range(500)]
    failed = sum(k.put_records(StreamName=name, Records=recs)["FailedRecordCount"] for _ in range(4))
    assert failed > 0, "2,000 records in a moment exceed the burst"
    with pytest.raises(ClientError) as e:
        for _ in range(4):  # 2 MiB at once: the 1 MiB/s bucket (with its one-second burst) runs dry
            k.put_record(StreamName=name, PartitionKey="p", Data=b"x" * 500_000)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert e.value.response["Error"]["Message"] == (
        f"Rate exceeded for shard {shard_id(0)} in stream {name} under account 000000000000.")
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="LATEST")["ShardIterator"]
    codes = []
    for _ in range(8):
        try:
            it = k.get_records(ShardIterator=it)["NextShardIterator"]
            codes.append("ok")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
    assert codes.count("ok") <= 5 + 1, codes
    assert "ProvisionedThroughputExceededException" in codes


def test_control_plane_rates_and_live_limits(aws_server):
    k = aws_server.client()
    name = unique_name("cp")
    k.create_stream(StreamName=name, ShardCount=3)
    lim = k.describe_limits()
    assert (lim["OpenShardCount"], lim["ShardLimit"]) == (3, 500)
    with pytest.raises(ClientError) as e:
        k.describe_limits()
    assert e.value.response["Error"]["Code"] == "LimitExceededException"
    assert e.value.response["Error"]["Message"].startswith("Rate exceeded for DescribeLimits")
    codes = []
    for _ in range(15):
        try:
            k.describe_stream(StreamName=name)
            codes.append("ok")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
            assert e.response["Error"]["Message"] == f"Rate exceeded for stream {name} under account 000000000000."
    assert "LimitExceededException" in codes
    time.sleep(1.1)
    k.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=str(2**60))
    assert k.describe_limits()["OpenShardCount"] == 4


def test_limits_off_admits_everything(server_factory):
    srv = server_factory(ephemeral=True, args=AWS[:-1] + ["off"])
    k = srv.client()
    name = unique_name("off")
    k.create_stream(StreamName=name, ShardCount=1)
    recs = [{"PartitionKey": "p", "Data": b"x" * 1000} for _ in range(500)]
    for _ in range(6):
        assert k.put_records(StreamName=name, Records=recs)["FailedRecordCount"] == 0
    for _ in range(5):
        k.describe_limits()


def test_shard_limit(server_factory):
    srv = server_factory(ephemeral=True, args=AWS + ["--shard-limit", "2"])
    k = srv.client()
    name = unique_name("sl")
    k.create_stream(StreamName=name, ShardCount=2)
    with pytest.raises(ClientError) as e:
        k.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=str(2**60))
    assert e.value.response["Error"]["Code"] == "LimitExceededException"
    assert "Current shard count for the account: 2. Limit: 2." in e.value.response["Error"]["Message"]
