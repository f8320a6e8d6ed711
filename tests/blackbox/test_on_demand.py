"""On-demand scaling: load on one shard of an ON_DEMAND stream makes the server split that shard by
itself (visible in ListShards / DescribeStream), without any resharding call."""

import threading
import time

from kutil import unique_name, wait_status

AWS = ["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0", "--limits", "aws"]


def test_hot_shard_splits_by_itself(server_factory):
    srv = server_factory(ephemeral=True, args=AWS)
    k = srv.client()
    name = unique_name("od")
    k.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_status(k, name)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 4
    stop = threading.Event()

    def load():
        while not stop.is_set():
            k.put_records(StreamName=name, Records=[{"PartitionKey": "hot", "Data": b"x" * 100}] * 500)

    t = threading.Thread(target=load)
    t.start()
    try:
        deadline, opened = time.time() + 20, 4
        while time.time() < deadline and opened <= 4:
            time.sleep(0.5)
            opened = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"]
    finally:
        stop.set()
        t.join()
    assert opened > 4, "the hot shard was not split"
    shards = k.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    closed = [s for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    assert len(closed) >= 1
    children = [s for s in shards if s.get("ParentShardId") == closed[0]["ShardId"]]
    assert len(children) == 2
    assert "split" in srv.log_text() or "on-demand scaling" in srv.log_text()


def test_warm_throughput_prescales_an_on_demand_stream(server_factory):
    srv = server_factory(ephemeral=True, args=AWS)
    k = srv.client()
    name = unique_name("warm")
    k.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_status(k, name)
    # Without the account's minimum throughput billing commitment, warm throughput is refused.
    try:
        k.update_stream_warm_throughput(StreamName=name, WarmThroughputMiBps=10)
        raise AssertionError("accepted without a billing commitment")
    except k.exceptions.InvalidArgumentException:
        pass
    summary = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert "WarmThroughput" not in summary
    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    r = k.update_stream_warm_throughput(StreamName=name, WarmThroughputMiBps=10)
    assert r["StreamName"] == name
    assert r["WarmThroughput"] == {"TargetMiBps": 10, "CurrentMiBps": 10}
    wait_status(k, name)
    summary = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 10
    assert summary["WarmThroughput"] == {"TargetMiBps": 10, "CurrentMiBps": 10}
    # Provisioned streams have no warm throughput.
    p = unique_name("prov")
    k.create_stream(StreamName=p, ShardCount=1)
    wait_status(k, p)
    try:
        k.update_stream_warm_throughput(StreamName=p, WarmThroughputMiBps=10)
        raise AssertionError("accepted on a provisioned stream")
    except k.exceptions.ValidationException:
        pass
