"""Stream lifecycle with non-zero transition times, and server configuration (flags / env)."""

import signal
import time

import pytest

from kutil import (
    ACCOUNT,
    expect_client_error,
    free_port,
    make_client,
    not_found_msg,
    shard_id,
    stream_arn,
    unique_name,
    wait_gone,
    wait_status,
)

SLOW = ["--create-stream-ms", "1500", "--delete-stream-ms", "1500", "--update-stream-ms", "1500"]


@pytest.fixture
def slow(server_factory):
    srv = server_factory(ephemeral=True, args=SLOW)
    return make_client(srv.endpoint), srv.raw()


def test_creating_then_active(slow):
    k, raw = slow
    name = unique_name("life")
    t0 = time.time()
    k.create_stream(StreamName=name, ShardCount=2)
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "CREATING"
    assert d["Shards"] == []
    assert d["HasMoreShards"] is False
    assert d["StreamARN"] == stream_arn(name)
    assert d["RetentionPeriodHours"] == 24
    s = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamStatus"] == "CREATING"
    summaries = {x["StreamName"]: x for x in k.list_streams()["StreamSummaries"]}
    assert summaries[name]["StreamStatus"] == "CREATING"

    # While CREATING the stream cannot be used.
    expect_client_error(k.put_record, "ResourceNotFoundException", not_found_msg(name), StreamName=name,
                        PartitionKey="a", Data=b"")
    expect_client_error(k.put_records, "ResourceNotFoundException", not_found_msg(name), StreamName=name,
                        Records=[{"PartitionKey": "a", "Data": b""}])
    expect_client_error(
        k.get_shard_iterator,
        "ResourceNotFoundException",
        f"Shard shardId-000000000000 in stream {name} under account {ACCOUNT} does not exist",
        StreamName=name,
        ShardId="shardId-0",
        ShardIteratorType="LATEST",
    )
    expect_client_error(k.list_shards, "ResourceInUseException", StreamName=name)
    expect_client_error(k.create_stream, "ResourceInUseException",
                        f"Stream {name} under account {ACCOUNT} already exists.", StreamName=name, ShardCount=1)

    wait_status(k, name, "ACTIVE", timeout=15)
    assert time.time() - t0 >= 1.0, "stream became ACTIVE much earlier than --create-stream-ms"
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(0), shard_id(1)]
    k.put_record(StreamName=name, PartitionKey="a", Data=b"ok")


def test_waiters(slow):
    k, _ = slow
    name = unique_name("wait")
    k.create_stream(StreamName=name, ShardCount=1)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert k.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "ACTIVE"
    k.delete_stream(StreamName=name)
    k.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_deleting_state(slow):
    k, _ = slow
    name = unique_name("del")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.delete_stream(StreamName=name)
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "DELETING"
    wait_gone(k, name, timeout=15)
    expect_client_error(k.describe_stream, "ResourceNotFoundException", not_found_msg(name), StreamName=name)


def test_delete_while_creating(slow):
    k, _ = slow
    name = unique_name("delc")
    k.create_stream(StreamName=name, ShardCount=1)
    assert k.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "CREATING"
    k.delete_stream(StreamName=name)
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "DELETING"
    wait_gone(k, name, timeout=15)


def test_updating_still_serves_data(slow):
    k, _ = slow
    name = unique_name("upd")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    status = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
    assert status in {"UPDATING", "ACTIVE"}
    # Reads and writes work while UPDATING.
    put = k.put_record(StreamName=name, PartitionKey="a", Data=b"during-update")
    it = k.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")
    recs = k.get_records(ShardIterator=it["ShardIterator"])["Records"]
    assert [r["SequenceNumber"] for r in recs] == [put["SequenceNumber"]]
    wait_status(k, name, "ACTIVE", timeout=15)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48


# ------------------------------------------------------------------ configuration


def test_listening_log_line(server):
    assert "listening on" in server.log_path.read_text(errors="replace")


def test_region_and_account_flags(server_factory):
    srv = server_factory(ephemeral=True, args=["--region", "eu-west-1", "--account-id", "123456789012",
                                               "--create-stream-ms", "0"])
    k = make_client(srv.endpoint)
    name = unique_name("acct")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    s = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamARN"] == f"arn:aws:kinesis:eu-west-1:123456789012:stream/{name}"
    missing = unique_name("nf")
    expect_client_error(k.describe_stream, "ResourceNotFoundException",
                        f"Stream {missing} under account 123456789012 not found.", StreamName=missing)


def test_configuration_from_environment(server_factory):
    port = free_port()
    env = {
        "KINESIN_LISTEN": f"127.0.0.1:{port}",
        "KINESIN_EPHEMERAL": "true",
        "KINESIN_REGION": "ap-southeast-2",
        "KINESIN_ACCOUNT_ID": "111122223333",
        "KINESIN_CREATE_STREAM_MS": "0",
    }
    srv = server_factory(data_dir=None, ephemeral=False, env=env, start=False)
    srv.data_dir = None
    srv.start()
    assert srv.port == port
    k = make_client(srv.endpoint)
    name = unique_name("env")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    assert arn == f"arn:aws:kinesis:ap-southeast-2:111122223333:stream/{name}"


def test_init_stream(server_factory):
    srv = server_factory(ephemeral=True, args=["--init-stream", "boot-a:3", "--init-stream", "boot-b"])
    k = make_client(srv.endpoint)
    wait_status(k, "boot-a")
    wait_status(k, "boot-b")
    assert k.describe_stream_summary(StreamName="boot-a")["StreamDescriptionSummary"]["OpenShardCount"] == 3
    assert k.describe_stream_summary(StreamName="boot-b")["StreamDescriptionSummary"]["OpenShardCount"] >= 1
    k.put_record(StreamName="boot-a", PartitionKey="x", Data=b"y")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_exit_on_signal(server_factory, sig):
    srv = server_factory(ephemeral=True)
    make_client(srv.endpoint).list_streams()
    rc = srv.stop(sig=sig, timeout=15)
    assert rc == 0, f"exit code {rc} after {sig!r}:\n{srv.log_text()}"
