"""SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode through boto3: lineage, closed parents,
ListShards filters on closed shards, AWS's errors, the UPDATING window, and a KCL-like consumer that
follows parents before children and reads every acknowledged record, in order per partition key,
through a split, a merge and an UpdateShardCount performed while a producer writes."""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from kutil import MAX_HASH, even_ranges, shard_id, unique_name, wait_status

HALF = str(2**127)


def open_shards(k, name):
    shards = k.list_shards(StreamName=name)["Shards"]
    return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def err(e):
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_split_closes_parent_and_children_inherit_the_range(kinesis, make_stream):
    name = make_stream(1)
    before = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"old")
    kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    wait_status(kinesis, name)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert [s["ShardId"] for s in shards] == [shard_id(0), shard_id(1), shard_id(2)]
    parent, low, high = shards
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    assert low["ParentShardId"] == high["ParentShardId"] == shard_id(0)
    assert "AdjacentParentShardId" not in low
    assert low["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)}
    assert high["HashKeyRange"] == {"StartingHashKey": HALF, "EndingHashKey": str(MAX_HASH)}
    # New puts go to the children; the old record stays readable in the parent, whose end is marked.
    after = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"new")
    assert after["ShardId"] in (shard_id(1), shard_id(2))
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")
    r = kinesis.get_records(ShardIterator=it["ShardIterator"])
    assert [x["SequenceNumber"] for x in r["Records"]] == [before["SequenceNumber"]]
    if "NextShardIterator" in r:
        r = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert r.get("NextShardIterator") is None
    assert sorted(c["ShardId"] for c in r["ChildShards"]) == [shard_id(1), shard_id(2)]
    assert all(c["ParentShards"] == [shard_id(0)] for c in r["ChildShards"])
    # Describe and summary agree.
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert len(d["Shards"]) == 3
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_list_shards_filters_see_lineage(kinesis, make_stream):
    name = make_stream(1)
    kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    ids = lambda **f: [s["ShardId"] for s in kinesis.list_shards(StreamName=name, ShardFilter=f)["Shards"]]
    assert ids(Type="AT_LATEST") == [shard_id(1), shard_id(2)]
    assert ids(Type="AT_TRIM_HORIZON") == [shard_id(0)]
    assert ids(Type="FROM_TRIM_HORIZON") == [shard_id(0), shard_id(1), shard_id(2)]
    assert ids(Type="AFTER_SHARD_ID", ShardId=shard_id(0)) == [shard_id(1), shard_id(2)]
    assert ids(Type="AT_TIMESTAMP", Timestamp=time.time() + 1) == [shard_id(1), shard_id(2)]
    assert ids(Type="FROM_TIMESTAMP", Timestamp=time.time() - 60) == [shard_id(0), shard_id(1), shard_id(2)]


def test_split_errors(kinesis, make_stream):
    name = make_stream(1)
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey="1")
    assert err(e) == (
        "InvalidArgumentException",
        f"NewStartingHashKey 1 used in SplitShard() on shard {shard_id(0)} in stream {name} under account "
        f"000000000000 is not both greater than one plus the shard's StartingHashKey 0 and less than the "
        f"shard's EndingHashKey {MAX_HASH}.",
    )
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(5), NewStartingHashKey=HALF)
    assert err(e) == (
        "ResourceNotFoundException",
        f"Could not find shard {shard_id(5)} in stream {name} under account 000000000000.",
    )
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName="nope-" + name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    assert err(e)[0] == "ResourceNotFoundException"
    kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey="12345")
    assert err(e)[0] == "InvalidArgumentException"
    assert "already been merged or split" in err(e)[1]


def test_merge_and_its_errors(kinesis, make_stream):
    name = make_stream(3)
    with pytest.raises(ClientError) as e:
        kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(0), AdjacentShardToMerge=shard_id(2))
    assert err(e) == (
        "InvalidArgumentException",
        f"Shards {shard_id(0)} and {shard_id(2)} in stream {name} under account 000000000000 are not an "
        "adjacent pair of shards eligible for merging",
    )
    with pytest.raises(ClientError) as e:
        kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(0), AdjacentShardToMerge=shard_id(9))
    assert err(e)[0] == "ResourceNotFoundException"
    kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(1), AdjacentShardToMerge=shard_id(2))
    wait_status(kinesis, name)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    child = shards[3]
    assert child["ShardId"] == shard_id(3)
    assert (child["ParentShardId"], child["AdjacentParentShardId"]) == (shard_id(1), shard_id(2))
    r = even_ranges(3)
    assert child["HashKeyRange"] == {"StartingHashKey": str(r[1][0]), "EndingHashKey": str(MAX_HASH)}
    assert [s["ShardId"] for s in open_shards(kinesis, name)] == [shard_id(0), shard_id(3)]


def test_update_shard_count(kinesis, make_stream):
    name = make_stream(2)
    r = kinesis.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (r["StreamName"], r["CurrentShardCount"], r["TargetShardCount"]) == (name, 2, 4)
    assert r["StreamARN"].endswith(":stream/" + name)
    wait_status(kinesis, name)
    ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
                    for s in open_shards(kinesis, name))
    assert ranges == even_ranges(4)
    for target in (9, 1):
        with pytest.raises(ClientError) as e:
            kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
        assert err(e)[0] == "LimitExceededException"
    kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
                    for s in open_shards(kinesis, name))
    assert ranges == even_ranges(3)
    assert kinesis.describe_limits()["OpenShardCount"] >= 3


def test_on_demand_streams_refuse_resharding(kinesis, make_stream):
    name = make_stream(None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    calls = {
        "SplitShard": lambda: kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF),
        "MergeShards": lambda: kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(0),
                                                    AdjacentShardToMerge=shard_id(1)),
        "UpdateShardCount": lambda: kinesis.update_shard_count(StreamName=name, TargetShardCount=5,
                                                               ScalingType="UNIFORM_SCALING"),
    }
    for op, call in calls.items():
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("ValidationException",
                          f"{op} is only supported for data streams with the provisioned capacity mode.")


def test_update_stream_mode_both_ways(kinesis, make_stream):
    name = make_stream(2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_status(kinesis, name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    with pytest.raises(ClientError) as e:
        kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert err(e)[0] == "InvalidArgumentException"
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    wait_status(kinesis, name)
    # AWS allows two switches per rolling 24 hours.
    with pytest.raises(ClientError) as e:
        kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert err(e)[0] == "LimitExceededException"


def test_updating_refuses_control_changes_but_serves_data(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0", "--delete-stream-ms", "0",
                                               "--update-stream-ms", "1500"])
    k = srv.client()
    name = unique_name("upd")
    k.create_stream(StreamName=name, ShardCount=1)
    k.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
    with pytest.raises(ClientError) as e:
        k.split_shard(StreamName=name, ShardToSplit=shard_id(1), NewStartingHashKey="12345")
    assert err(e) == ("ResourceInUseException",
                      f"Stream {name} under account 000000000000 not ACTIVE, instead in state UPDATING")
    k.put_record(StreamName=name, PartitionKey="p", Data=b"x")
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")
    k.get_records(ShardIterator=it["ShardIterator"])
    wait_status(k, name)


def read_like_kcl(k, name):
    """Reads every shard to its end, a shard only after its parents (as KCL does); returns records
    in the order read."""
    shards = {s["ShardId"]: s for s in k.list_shards(StreamName=name)["Shards"]}
    done, out = set(), []
    while len(done) < len(shards):
        ready = [sid for sid, s in sorted(shards.items()) if sid not in done
                 and all(p in done for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)]
        assert ready, "lineage has a cycle or a missing parent"
        for sid in ready:
            it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                r = k.get_records(ShardIterator=it)
                out.extend(r["Records"])
                if r.get("NextShardIterator") is None:
                    assert r["ChildShards"], f"closed shard {sid} ended without ChildShards"
                    break
                if not r["Records"] and "EndingSequenceNumber" not in shards[sid]["SequenceNumberRange"]:
                    break  # an open shard read to its tip
                it = r["NextShardIterator"]
            done.add(sid)
    return out


def test_consumer_follows_lineage_through_split_merge_and_scaling(kinesis, make_stream):
    name = make_stream(2)
    acked, stop = {}, threading.Event()
    keys = [f"user-{i}" for i in range(20)]

    def produce():
        n = 0
        while not stop.is_set():
            recs = [{"PartitionKey": pk, "Data": f"{pk}:{n}".encode()} for pk in keys]
            r = kinesis.put_records(StreamName=name, Records=recs)
            for rec, res in zip(recs, r["Records"]):
                if "SequenceNumber" in res:
                    acked.setdefault(rec["PartitionKey"], []).append(rec["Data"].decode())
            n += 1

    t = threading.Thread(target=produce)
    t.start()
    try:
        time.sleep(0.3)
        kinesis.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=str(2**126))
        wait_status(kinesis, name)
        time.sleep(0.3)
        kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(2), AdjacentShardToMerge=shard_id(3))
        wait_status(kinesis, name)
        time.sleep(0.3)
        kinesis.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
        wait_status(kinesis, name)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    records = read_like_kcl(kinesis, name)
    got = {}
    for r in records:
        got.setdefault(r["PartitionKey"], []).append(r["Data"].decode())
    assert sum(len(v) for v in acked.values()) > 100
    for pk in keys:
        assert got.get(pk) == acked.get(pk), f"records of {pk} lost, repeated or out of order"
