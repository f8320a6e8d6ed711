"""Durability: graceful restart and kill -9 on a data directory."""

import time

import pytest

from kutil import (
    expect_client_error,
    make_client,
    not_found_msg,
    read_shard,
    shard_id,
    unique_name,
    wait_gone,
    wait_status,
)

FAST = ["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0"]


def snapshot(k, name):
    """Everything observable about a stream, minus volatile fields."""
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    s = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    tags = k.list_tags_for_stream(StreamName=name)["Tags"]
    shards = k.list_shards(StreamName=name)["Shards"]
    return {"describe": d, "summary": s, "tags": tags, "shards": shards}


def all_records(k, name, n_shards):
    return {shard_id(i): read_shard(k, name, shard_id(i)) for i in range(n_shards)}


def put_batch(k, name, start, count):
    entries = [{"PartitionKey": f"pk-{i}", "Data": f"rec-{i}".encode()} for i in range(start, start + count)]
    acked = []
    while entries:
        r = k.put_records(StreamName=name, Records=entries)
        retry = []
        for e, res in zip(entries, r["Records"]):
            if "SequenceNumber" in res:
                acked.append((res["ShardId"], res["SequenceNumber"], e["Data"], e["PartitionKey"]))
            else:
                retry.append(e)
        entries = retry
        if entries:
            time.sleep(0.2)
    return acked


def check_acked_present(k, name, n_shards, acked):
    recs = all_records(k, name, n_shards)
    by_seq = {}
    for sid, rs in recs.items():
        seqs = [int(r["SequenceNumber"]) for r in rs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{sid} out of order after restart"
        for r in rs:
            by_seq[(sid, r["SequenceNumber"])] = (r["Data"], r["PartitionKey"])
    missing = [a for a in acked if (a[0], a[1]) not in by_seq]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    for sid, seq, data, pk in acked:
        assert by_seq[(sid, seq)] == (data, pk)
    return recs


def test_graceful_restart_keeps_everything(server_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = server_factory(data_dir=data, args=FAST)
    k = make_client(srv.endpoint)
    name = unique_name("persist")
    k.create_stream(StreamName=name, ShardCount=3, Tags={"owner": "tests"})
    wait_status(k, name)
    k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    wait_status(k, name)
    k.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    wait_status(k, name)
    gone = unique_name("gone")
    k.create_stream(StreamName=gone, ShardCount=1)
    wait_status(k, gone)
    k.delete_stream(StreamName=gone)
    wait_gone(k, gone)

    acked = put_batch(k, name, 0, 300)
    acked += [
        (r["ShardId"], r["SequenceNumber"], b"single-%d" % i, f"s{i}")
        for i, r in enumerate(k.put_record(StreamName=name, PartitionKey=f"s{i}", Data=b"single-%d" % i)
                              for i in range(20))
    ]
    before = snapshot(k, name)
    recs_before = all_records(k, name, 3)

    assert srv.stop() == 0, srv.log_text()
    srv.start()
    k = make_client(srv.endpoint)

    after = snapshot(k, name)
    assert after == before
    assert after["summary"]["RetentionPeriodHours"] == 72
    assert after["tags"] == [{"Key": "owner", "Value": "tests"}]
    recs_after = check_acked_present(k, name, 3, acked)
    assert recs_after == recs_before
    expect_client_error(k.describe_stream, "ResourceNotFoundException", not_found_msg(gone), StreamName=gone)

    # Sequence numbers keep increasing across the restart.
    last = {sid: max(int(r["SequenceNumber"]) for r in rs) for sid, rs in recs_after.items() if rs}
    for i in range(30):
        r = k.put_record(StreamName=name, PartitionKey=f"post{i}", Data=b"post")
        if r["ShardId"] in last:
            assert int(r["SequenceNumber"]) > last[r["ShardId"]]
        last[r["ShardId"]] = int(r["SequenceNumber"])

    # Iterators issued before a restart are either still valid or rejected - never wrong.
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert srv.stop() == 0
    srv.start()
    k = make_client(srv.endpoint)
    try:
        got = k.get_records(ShardIterator=it)["Records"]
    except Exception as e:  # noqa: BLE001
        assert e.response["Error"]["Code"] in {"ExpiredIteratorException", "InvalidArgumentException"}
    else:
        assert [r["SequenceNumber"] for r in got] == [
            r["SequenceNumber"] for r in read_shard(k, name, shard_id(0))
        ][: len(got)]


# `interval:<ms>` answers before the sync; a process crash (unlike a power cut) must still lose
# nothing, because the OS has every byte written.
@pytest.mark.parametrize("durability", ["fsync", "interval:1000"])
@pytest.mark.parametrize("round_", range(3))
def test_kill_9_after_acknowledged_puts_loses_nothing(server_factory, tmp_path, round_, durability):
    data = tmp_path / "data"
    data.mkdir()
    srv = server_factory(data_dir=data, args=[*FAST, "--durability", durability])
    k = make_client(srv.endpoint)
    name = unique_name("k9")
    k.create_stream(StreamName=name, ShardCount=2)
    wait_status(k, name)
    acked = put_batch(k, name, 0, 200)
    # The very last acknowledged writes right before the kill are the interesting ones.
    for i in range(10 + round_ * 10):
        r = k.put_record(StreamName=name, PartitionKey=f"last{i}", Data=b"last-%d" % i)
        acked.append((r["ShardId"], r["SequenceNumber"], b"last-%d" % i, f"last{i}"))
    acked += put_batch(k, name, 1000, 50)
    srv.kill()

    srv.start()
    k = make_client(srv.endpoint)
    wait_status(k, name)
    check_acked_present(k, name, 2, acked)
    # and the stream still takes writes with higher sequence numbers
    r = k.put_record(StreamName=name, PartitionKey="after", Data=b"after")
    same_shard = [int(a[1]) for a in acked if a[0] == r["ShardId"]]
    assert int(r["SequenceNumber"]) > max(same_shard)


def test_kill_9_right_after_create_and_tag(server_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = server_factory(data_dir=data, args=FAST)
    k = make_client(srv.endpoint)
    name = unique_name("k9meta")
    k.create_stream(StreamName=name, ShardCount=4)
    wait_status(k, name)
    k.add_tags_to_stream(StreamName=name, Tags={"a": "1"})
    deleted = unique_name("k9del")
    k.create_stream(StreamName=deleted, ShardCount=1)
    wait_status(k, deleted)
    k.delete_stream(StreamName=deleted)
    wait_gone(k, deleted)
    srv.kill()
    srv.start()
    k = make_client(srv.endpoint)
    wait_status(k, name)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 4
    assert k.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "a", "Value": "1"}]
    expect_client_error(k.describe_stream, "ResourceNotFoundException", not_found_msg(deleted), StreamName=deleted)


def test_recreated_stream_survives_restart_without_old_data(server_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = server_factory(data_dir=data, args=FAST)
    k = make_client(srv.endpoint)
    name = unique_name("reinc")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.put_record(StreamName=name, PartitionKey="a", Data=b"first-life")
    k.delete_stream(StreamName=name)
    wait_gone(k, name)
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    put = k.put_record(StreamName=name, PartitionKey="a", Data=b"second-life")
    assert srv.stop() == 0
    srv.start()
    k = make_client(srv.endpoint)
    recs = read_shard(k, name, shard_id(0))
    assert [(r["SequenceNumber"], r["Data"]) for r in recs] == [(put["SequenceNumber"], b"second-life")]


def test_init_stream_survives_restart(server_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    args = FAST + ["--init-stream", "boot:2"]
    srv = server_factory(data_dir=data, args=args)
    k = make_client(srv.endpoint)
    wait_status(k, "boot")
    put = k.put_record(StreamName="boot", PartitionKey="a", Data=b"keep-me")
    assert srv.stop() == 0
    srv.start()
    k = make_client(srv.endpoint)
    wait_status(k, "boot")
    recs = read_shard(k, "boot", put["ShardId"])
    assert [r["SequenceNumber"] for r in recs] == [put["SequenceNumber"]]
