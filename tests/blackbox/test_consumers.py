"""Enhanced fan-out: stream consumers and SubscribeToShard through boto3.

Pins the consumer lifecycle and ARN format, the limits, DeleteStream's EnforceConsumerDeletion,
and that SubscribeToShard (HTTP/1.1 chunked event stream) sends initial-response, pushes records
appended after subscribing at once, refuses a resubscription within 5 s, and ends a closed shard
with ChildShards and no ContinuationSequenceNumber — at once when the split happens while
subscribed.
"""
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError

from kutil import stream_arn, unique_name


def make_stream(kinesis, shards=1):
    name = unique_name("efo")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return name, stream_arn(name)


def register(kinesis, arn, name="c1"):
    return kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=name)["Consumer"]


def error_code(e):
    return e.value.response["Error"]["Code"]


def test_register_describe_list_deregister(kinesis):
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    assert re.fullmatch(re.escape(arn) + r"/consumer/c1:\d+", c["ConsumerARN"])
    assert c["ConsumerStatus"] == "ACTIVE"
    d = kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
    assert d["StreamARN"] == arn and d["ConsumerName"] == "c1"
    d2 = kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="c1")["ConsumerDescription"]
    assert d2["ConsumerARN"] == c["ConsumerARN"]
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["ConsumerCount"] == 1
    with pytest.raises(ClientError) as e:
        register(kinesis, arn)
    assert error_code(e) == "ResourceInUseException"
    kinesis.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])
    assert error_code(e) == "ResourceNotFoundException"
    assert kinesis.list_stream_consumers(StreamARN=arn)["Consumers"] == []


def test_limit_and_pagination(kinesis):
    _, arn = make_stream(kinesis)
    for i in range(20):
        register(kinesis, arn, f"c{i:02d}")
    with pytest.raises(ClientError) as e:
        register(kinesis, arn, "one-too-many")
    assert error_code(e) == "LimitExceededException"
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = kinesis.list_stream_consumers(StreamARN=arn, MaxResults=7, **kw)
        seen += [c["ConsumerName"] for c in page["Consumers"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == [f"c{i:02d}" for i in range(20)]


def test_delete_stream_needs_enforce_consumer_deletion(kinesis):
    name, arn = make_stream(kinesis)
    register(kinesis, arn)
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=name)
    assert error_code(e) == "ResourceInUseException"
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_summary(StreamName=name)
    assert error_code(e) == "ResourceNotFoundException"


def events(kinesis, consumer_arn, shard="shardId-000000000000", **pos):
    pos = pos or {"Type": "LATEST"}
    r = kinesis.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=shard, StartingPosition=pos)
    return r["EventStream"]


def test_subscribe_pushes_records_put_after_subscribing(kinesis):
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    stream = events(kinesis, c["ConsumerARN"])
    put_times = {}

    def put():
        time.sleep(0.5)
        for i in range(20):
            put_times[str(i)] = time.monotonic()
            kinesis.put_record(StreamName=name, PartitionKey="pk", Data=str(i).encode())
            time.sleep(0.05)

    t = threading.Thread(target=put)
    t.start()
    got, latencies = [], []
    for ev in stream:
        for r in ev["SubscribeToShardEvent"]["Records"]:
            got.append(r["Data"].decode())
            latencies.append(time.monotonic() - put_times[r["Data"].decode()])
        if len(got) == 20:
            break
    stream.close()
    t.join()
    assert got == [str(i) for i in range(20)]
    latencies.sort()
    print(f"push latency (put start to event): p50 {latencies[10] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    assert latencies[10] < 0.2


def test_trim_horizon_and_at_sequence_number(kinesis):
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    seqs = [kinesis.put_record(StreamName=name, PartitionKey="pk", Data=f"r{i}".encode())["SequenceNumber"]
            for i in range(5)]
    for pos, want in [({"Type": "TRIM_HORIZON"}, 5), ({"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": seqs[2]}, 3),
                      ({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seqs[2]}, 2)]:
        stream = events(kinesis, c["ConsumerARN"], **pos)
        ev = next(iter(stream))["SubscribeToShardEvent"]
        stream.close()
        assert [r["SequenceNumber"] for r in ev["Records"]] == seqs[5 - want:]
        # Past the last record delivered, not its number (test_aws_parity.py).
        assert int(ev["ContinuationSequenceNumber"]) > int(seqs[-1])
        time.sleep(5.1)  # the next subscription of this consumer and shard must wait 5 s


def test_resubscribe_within_5s_is_refused(kinesis):
    _, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    stream = events(kinesis, c["ConsumerARN"])
    with pytest.raises(ClientError) as e:
        events(kinesis, c["ConsumerARN"])
    assert error_code(e) == "ResourceInUseException"
    stream.close()


def test_idle_event_within_5s(kinesis):
    _, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    it = iter(events(kinesis, c["ConsumerARN"]))
    next(it)
    t0 = time.monotonic()
    ev = next(it)["SubscribeToShardEvent"]
    assert ev["Records"] == [] and time.monotonic() - t0 < 6.5
    assert "ContinuationSequenceNumber" in ev


def test_shard_end_after_split_has_child_shards(kinesis):
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    kinesis.put_record(StreamName=name, PartitionKey="pk", Data=b"before")
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2 ** 127))
    evs = list(events(kinesis, c["ConsumerARN"], Type="TRIM_HORIZON"))
    last = evs[-1]["SubscribeToShardEvent"]
    assert [r["Data"] for e in evs for r in e["SubscribeToShardEvent"]["Records"]] == [b"before"]
    assert "ContinuationSequenceNumber" not in last
    assert sorted(ch["ShardId"] for ch in last["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]


def test_split_while_subscribed_ends_the_parent_at_once(kinesis):
    # KCL finishes a parent shard (SHARD_END checkpoint, child leases) when its subscription
    # delivers the shard end; that must not wait for the next 5 s idle event.
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    kinesis.put_record(StreamName=name, PartitionKey="pk", Data=b"before")
    it = iter(events(kinesis, c["ConsumerARN"], Type="TRIM_HORIZON"))
    first = next(it)["SubscribeToShardEvent"]
    assert [r["Data"] for r in first["Records"]] == [b"before"]
    t0 = time.monotonic()
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2 ** 127))
    last = next(it)["SubscribeToShardEvent"]
    waited = time.monotonic() - t0
    assert "ContinuationSequenceNumber" not in last and last["Records"] == []
    assert sorted(ch["ShardId"] for ch in last["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]
    assert waited < 1.0, f"the shard end came {waited:.1f} s after the split"


def test_subscribe_errors_before_the_stream(kinesis):
    _, arn = make_stream(kinesis)
    with pytest.raises(ClientError) as e:
        events(kinesis, arn + "/consumer/nope:1700000000")
    assert error_code(e) == "ResourceNotFoundException"
    c = register(kinesis, arn)
    with pytest.raises(ClientError) as e:
        events(kinesis, c["ConsumerARN"], shard="shardId-000000000009")
    assert error_code(e) == "ResourceNotFoundException"


def test_newer_subscription_takes_over_after_5s(kinesis):
    from botocore.exceptions import EventStreamError

    _, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    old = iter(events(kinesis, c["ConsumerARN"]))
    next(old)
    time.sleep(5.3)
    new = iter(events(kinesis, c["ConsumerARN"]))
    assert "SubscribeToShardEvent" in next(new)
    with pytest.raises(EventStreamError) as e:
        for _ in range(5):
            next(old)
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"


@pytest.mark.parametrize("how", ["deregister", "delete_stream"])
def test_deregister_or_delete_ends_open_subscriptions_at_once(kinesis, how):
    name, arn = make_stream(kinesis)
    c = register(kinesis, arn)
    it = iter(events(kinesis, c["ConsumerARN"]))
    next(it)  # the first (idle) event
    t0 = time.monotonic()
    if how == "deregister":
        kinesis.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
    else:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    rest = list(it)  # ends when the server ends the event stream
    waited = time.monotonic() - t0
    assert all("SubscribeToShardEvent" in e for e in rest), rest
    assert waited < 2.0, f"the subscription ended {waited:.1f} s after {how}"
