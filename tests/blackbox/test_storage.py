"""`kinesin serve --storage memory`: the whole API in process memory, nothing written to the
data directory, nothing left at exit; `--storage` refuses what it does not know."""

import subprocess

from kutil import kinesin_bin, read_shard, unique_name, wait_status


def test_memory_storage_never_touches_the_data_dir(server_factory, tmp_path):
    data = tmp_path / "data"  # not created: the server must not create it either
    srv = server_factory(data_dir=data, args=["--storage", "memory"])
    client = srv.client()
    name = unique_name("mem")
    client.create_stream(StreamName=name, ShardCount=2)
    wait_status(client, name)
    for i in range(20):
        client.put_record(StreamName=name, PartitionKey=f"pk{i}", Data=f"r{i}".encode())
    client.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    client.put_record(StreamName=name, PartitionKey="pk", Data=b"sealed")
    got = []
    for shard in client.list_shards(StreamName=name)["Shards"]:
        got += read_shard(client, name, shard["ShardId"])
    assert sorted(r["Data"] for r in got) == sorted([f"r{i}".encode() for i in range(20)] + [b"sealed"])
    assert [r.get("EncryptionType") for r in got if r["Data"] == b"sealed"] == ["KMS"]
    assert "memory" in srv.log_text()
    assert srv.stop() == 0, srv.log_text()
    assert not data.exists(), f"--storage memory created {data}: {list(data.rglob('*'))}"
    # Memory is memory: a new server starts empty.
    srv.start()
    assert srv.client().list_streams()["StreamNames"] == []
    assert srv.stop() == 0
    assert not data.exists()


def test_unknown_storage_is_refused_naming_the_choices(tmp_path):
    out = subprocess.run(
        [kinesin_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--storage", "disk"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert "--storage disk: expected `local`" in out.stderr and "`memory`" in out.stderr, out.stderr
