"""Where kinesin answered unlike AWS (issue 13), each pinned by a regression test:

- MergeShards refuses the inverted pair (ShardToMerge above AdjacentShardToMerge) as AWS does;
- while a split / merge / UpdateShardCount keeps the stream UPDATING, DescribeStream, ListShards
  and DescribeStreamSummary show the old shards (which keep taking writes); the new ones appear
  when the stream is ACTIVE again;
- a DELETING stream lists no shards (also one deleted while CREATING), and DeleteStream on it
  answers ResourceInUseException instead of claiming it does not exist;
- SequenceNumberForOrdering: the all-`f` value is refused, a version-1 sequence number accepted;
- CreateStream with neither ShardCount nor StreamModeDetails makes an ON_DEMAND stream of 4 shards;
- GetRecords takes a shard iterator wrapped in one pair of double quotes;
- SubscribeToShard's ContinuationSequenceNumber lies between the last record delivered and the
  next one, so resuming AT or AFTER it delivers nothing twice;
- by default a new stream is ACTIVE at once, so boto3's stream_exists waiter returns at once.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kutil import (
    ACCESS_KEY,
    ACCOUNT,
    REGION,
    SECRET_KEY,
    expect_client_error,
    make_client,
    shard_id,
    stream_arn,
    unique_name,
    wait_gone,
    wait_status,
)

HALF = str(2**127)


# ------------------------------------------------------------------ MergeShards order


def test_merge_refuses_the_inverted_pair(kinesis, make_stream):
    name = make_stream(2)
    expect_client_error(
        kinesis.merge_shards, "InvalidArgumentException",
        f"Shards {shard_id(1)} and {shard_id(0)} in stream {name} under account {ACCOUNT} are not an adjacent "
        "pair of shards eligible for merging",
        StreamName=name, ShardToMerge=shard_id(1), AdjacentShardToMerge=shard_id(0))
    assert len(kinesis.list_shards(StreamName=name)["Shards"]) == 2, "nothing was merged"
    kinesis.merge_shards(StreamName=name, ShardToMerge=shard_id(0), AdjacentShardToMerge=shard_id(1))
    wait_status(kinesis, name)
    child = kinesis.list_shards(StreamName=name)["Shards"][2]
    assert (child["ParentShardId"], child["AdjacentParentShardId"]) == (shard_id(0), shard_id(1))


# ------------------------------------------------------------------ UPDATING shows the old shards


@pytest.fixture
def updating(server_factory):
    """A server whose reshards keep the stream UPDATING for 1.5 s."""
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0", "--delete-stream-ms", "0",
                                               "--update-stream-ms", "1500"])
    return make_client(srv.endpoint)


def shard_view(k, name):
    """(DescribeStream, ListShards, OpenShardCount) as shard ids with an `*` for closed ones."""
    def ids(shards):
        return [s["ShardId"] + ("*" if "EndingSequenceNumber" in s["SequenceNumberRange"] else "") for s in shards]
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    listed = k.list_shards(StreamName=name)["Shards"]
    summary = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return ids(d["Shards"]), ids(listed), summary["OpenShardCount"], summary["StreamStatus"]


def test_split_shows_old_shards_until_active(updating):
    k = updating
    name = unique_name("upd")
    k.create_stream(StreamName=name, ShardCount=1)
    before = k.put_record(StreamName=name, PartitionKey="a", Data=b"before")
    k.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    old = [shard_id(0)]
    assert shard_view(k, name) == (old, old, 1, "UPDATING")
    # The old shard still takes writes while UPDATING, as on AWS.
    during = k.put_record(StreamName=name, PartitionKey="a", Data=b"during")
    assert during["ShardId"] == shard_id(0)
    wait_status(k, name)
    new = [shard_id(0) + "*", shard_id(1), shard_id(2)]
    assert shard_view(k, name) == (new, new, 2, "ACTIVE")
    after = k.put_record(StreamName=name, PartitionKey="a", Data=b"after")
    assert after["ShardId"] in (shard_id(1), shard_id(2))
    # The parent ends after the record written while UPDATING, then names its children.
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    r = k.get_records(ShardIterator=it)
    assert [x["SequenceNumber"] for x in r["Records"]] == [before["SequenceNumber"], during["SequenceNumber"]]
    assert "NextShardIterator" not in r
    assert sorted(c["ShardId"] for c in r["ChildShards"]) == [shard_id(1), shard_id(2)]


def test_merge_and_update_shard_count_show_old_shards_until_active(updating):
    k = updating
    name = unique_name("upd")
    k.create_stream(StreamName=name, ShardCount=2)
    k.merge_shards(StreamName=name, ShardToMerge=shard_id(0), AdjacentShardToMerge=shard_id(1))
    old = [shard_id(0), shard_id(1)]
    assert shard_view(k, name) == (old, old, 2, "UPDATING")
    expect_client_error(k.update_shard_count, "ResourceInUseException",
                        f"Stream {name} under account {ACCOUNT} not ACTIVE, instead in state UPDATING",
                        StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    wait_status(k, name)
    merged = [shard_id(0) + "*", shard_id(1) + "*", shard_id(2)]
    assert shard_view(k, name) == (merged, merged, 1, "ACTIVE")
    r = k.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert (r["CurrentShardCount"], r["TargetShardCount"]) == (1, 2)
    assert shard_view(k, name) == (merged, merged, 1, "UPDATING")
    wait_status(k, name)
    view = shard_view(k, name)
    assert view[2] == 2 and view[0] == view[1] and len(view[0]) == 5


# ------------------------------------------------------------------ DELETING


@pytest.fixture
def slow_lifecycle(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "1500", "--delete-stream-ms", "1500",
                                               "--update-stream-ms", "0"])
    return make_client(srv.endpoint)


def test_stream_deleted_while_creating_lists_no_shards(slow_lifecycle):
    k = slow_lifecycle
    name = unique_name("delc")
    k.create_stream(StreamName=name, ShardCount=2)
    assert k.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "CREATING"
    k.delete_stream(StreamName=name)
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert (d["StreamStatus"], d["Shards"], d["HasMoreShards"]) == ("DELETING", [], False)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 0
    wait_gone(k, name)


def test_delete_stream_on_a_deleting_stream_is_in_use(slow_lifecycle):
    k = slow_lifecycle
    name = unique_name("deld")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.delete_stream(StreamName=name)
    # AWS: a DELETING stream describes with no shards.
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert (d["StreamStatus"], d["Shards"]) == ("DELETING", [])
    summaries = {s["StreamName"]: s["StreamStatus"] for s in k.list_streams()["StreamSummaries"]}
    assert summaries[name] == "DELETING"
    # Consistent with the listing: the stream exists, it is being deleted.
    e = expect_client_error(k.delete_stream, "ResourceInUseException", StreamName=name)
    assert "DELETING" in e.response["Error"]["Message"]
    wait_gone(k, name)
    expect_client_error(k.delete_stream, "ResourceNotFoundException", StreamName=name)


# ------------------------------------------------------------------ SequenceNumberForOrdering


def from_hex(h):
    return str(int(h, 16))


def test_sequence_number_for_ordering_as_aws(kinesis, make_stream):
    name = make_stream(1)
    real = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"x")["SequenceNumber"]
    for seq in [real,
                from_hex("20000000000000000000000000000000000000000000002"),
                from_hex("20000000000000000000000000000000000000000000001"),  # version 1
                from_hex("20000000000000000000000000000000000000800000002")]:
        kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"y", SequenceNumberForOrdering=seq)
    for h in ["2ffffffffff7fffffffffffffff000000000007fffffff2",  # all f: creation time too large
              "20000000000000000000000000000000000000000000003",  # version 3
              "20000000000800000000000000000000000000000000002"]:  # sequence index high bit
        seq = from_hex(h)
        expect_client_error(
            kinesis.put_record, "InvalidArgumentException",
            f"ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {name} under account {ACCOUNT} "
            "is invalid.",
            StreamName=name, PartitionKey="a", Data=b"z", SequenceNumberForOrdering=seq)


# ------------------------------------------------------------------ CreateStream defaults


def test_create_stream_without_shard_count_or_mode_is_on_demand(kinesis, stream_name):
    kinesis.create_stream(StreamName=stream_name)
    wait_status(kinesis, stream_name)
    s = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert s["OpenShardCount"] == 4
    assert len(kinesis.list_shards(StreamName=stream_name)["Shards"]) == 4


# ------------------------------------------------------------------ quoted iterators


def test_get_records_takes_a_double_quoted_iterator(kinesis, make_stream):
    name = make_stream(1)
    put = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"quoted")
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0),
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    r = kinesis.get_records(ShardIterator=f'"{it}"')
    assert [x["SequenceNumber"] for x in r["Records"]] == [put["SequenceNumber"]]
    # Only one pair is stripped.
    expect_client_error(kinesis.get_records, "InvalidArgumentException", "Invalid ShardIterator.",
                        ShardIterator=f'""{it}""')


def test_cli_iterator_passed_on_as_json_text(server, kinesis, make_stream, tmp_path):
    """A shell script that keeps the CLI's JSON output (`--query ShardIterator`, quotes
    included) and hands it to get-records."""
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("AWS CLI not installed")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1",
           "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}
    base = [str(aws), "--endpoint-url", server.endpoint, "--output", "json", "kinesis"]

    def run(*args):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p.stdout.strip()

    name = make_stream(1)
    put = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"cli")
    it = run("get-shard-iterator", "--stream-name", name, "--shard-id", shard_id(0),
             "--shard-iterator-type", "TRIM_HORIZON", "--query", "ShardIterator")
    assert it.startswith('"') and it.endswith('"'), it
    got = json.loads(run("get-records", "--shard-iterator", it))["Records"]
    assert [r["SequenceNumber"] for r in got] == [put["SequenceNumber"]]


# ------------------------------------------------------------------ ContinuationSequenceNumber


def first_event(k, consumer_arn, **pos):
    stream = k.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=shard_id(0), StartingPosition=pos)["EventStream"]
    try:
        return next(iter(stream))["SubscribeToShardEvent"]
    finally:
        stream.close()


def test_continuation_sequence_number_resumes_without_repeats(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    consumers = [kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=f"c{i}")["Consumer"]["ConsumerARN"]
                 for i in range(5)]
    # An empty shard: the continuation is before its first record.
    empty = first_event(kinesis, consumers[0], Type="TRIM_HORIZON")
    assert empty["Records"] == []
    first = [kinesis.put_record(StreamName=name, PartitionKey="a", Data=f"r{i}".encode())["SequenceNumber"]
             for i in range(3)]
    for pos_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType=pos_type,
                                        StartingSequenceNumber=empty["ContinuationSequenceNumber"])
        got = kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
        assert [r["SequenceNumber"] for r in got] == first, pos_type

    ev = first_event(kinesis, consumers[1], Type="TRIM_HORIZON")
    assert [r["SequenceNumber"] for r in ev["Records"]] == first
    cont = ev["ContinuationSequenceNumber"]
    assert int(first[-1]) < int(cont), "the continuation is past the last record delivered"
    later = [kinesis.put_record(StreamName=name, PartitionKey="a", Data=f"s{i}".encode())["SequenceNumber"]
             for i in range(2)]
    assert int(cont) < int(later[0]), "and before the next one"
    for consumer, pos_type in [(consumers[2], "AT_SEQUENCE_NUMBER"), (consumers[3], "AFTER_SEQUENCE_NUMBER")]:
        resumed = first_event(kinesis, consumer, Type=pos_type, SequenceNumber=cont)
        assert [r["SequenceNumber"] for r in resumed["Records"]] == later, f"{pos_type} {cont}"
    # A record's own sequence number keeps its meaning.
    resumed = first_event(kinesis, consumers[4], Type="AFTER_SEQUENCE_NUMBER", SequenceNumber=first[-1])
    assert [r["SequenceNumber"] for r in resumed["Records"]] == later


# ------------------------------------------------------------------ instant by default


def test_waiters_return_at_once_on_a_default_server(server_factory):
    srv = server_factory(ephemeral=True)  # no --create-stream-ms / --delete-stream-ms
    k = make_client(srv.endpoint)
    name = unique_name("wait")
    t0 = time.monotonic()
    k.create_stream(StreamName=name, ShardCount=1)
    k.get_waiter("stream_exists").wait(StreamName=name)
    created = time.monotonic() - t0
    k.put_record(StreamName=name, PartitionKey="a", Data=b"x")
    t0 = time.monotonic()
    k.delete_stream(StreamName=name)
    k.get_waiter("stream_not_exists").wait(StreamName=name)
    deleted = time.monotonic() - t0
    assert created < 1.0, f"stream_exists took {created:.1f} s"
    assert deleted < 1.0, f"stream_not_exists took {deleted:.1f} s"


def test_reshard_is_at_once_on_a_default_server(server_factory):
    srv = server_factory(ephemeral=True)
    k = make_client(srv.endpoint)
    name = unique_name("inst")
    k.create_stream(StreamName=name, ShardCount=1)
    k.split_shard(StreamName=name, ShardToSplit=shard_id(0), NewStartingHashKey=HALF)
    s = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (s["StreamStatus"], s["OpenShardCount"]) == ("ACTIVE", 2)


def test_flags_still_model_awss_delays(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "800"])
    k = make_client(srv.endpoint)
    name = unique_name("slow")
    k.create_stream(StreamName=name, ShardCount=1)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "CREATING"
    wait_status(k, name)
