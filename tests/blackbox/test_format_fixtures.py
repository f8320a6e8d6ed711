"""The committed data-dir fixtures (docs/format.md, "Fixtures") open in the real binary.

`tests/fixtures/format/data-dir/` is written by the current code, `data-dir-2026-12/` by kinesin
before stored documents carried their format version. The binary must start on a copy of each
and serve its metadata as it was written: the stream, its tags, the split (a closed parent and
two children), encryption and the consumer. (Record contents are checked by
crates/service/tests/format_fixtures.rs on a manual clock: here, real time may have carried the
fixture's records past retention.) A damaged or newer-version file must stop the start naming it.
"""

import shutil

import pytest

from kutil import REPO, stream_arn

FIXTURES = REPO / "tests" / "fixtures" / "format"
STREAM = "fixture"
SPLIT_AT = 2**127


@pytest.mark.parametrize("fixture", ["data-dir", "data-dir-2026-12"])
def test_data_dir_fixture_opens_and_serves_its_metadata(server_factory, tmp_path, fixture):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / fixture, data)
    srv = server_factory(data_dir=data)
    k = srv.client()
    assert k.list_streams()["StreamNames"] == [STREAM]
    d = k.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    assert d["StreamStatus"] == "ACTIVE"
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    assert d["ConsumerCount"] == 1
    assert k.list_tags_for_stream(StreamName=STREAM)["Tags"] == [{"Key": "team", "Value": "format"}]
    shards = {s["ShardId"]: s for s in k.list_shards(StreamName=STREAM)["Shards"]}
    children = [shards["shardId-000000000001"], shards["shardId-000000000002"]]
    assert [(int(c["HashKeyRange"]["StartingHashKey"]), int(c["HashKeyRange"]["EndingHashKey"])) for c in children] == [
        (0, SPLIT_AT - 1),
        (SPLIT_AT, 2**128 - 1),
    ]
    assert all(c["ParentShardId"] == "shardId-000000000000" for c in children)
    consumers = k.list_stream_consumers(StreamARN=stream_arn(STREAM))["Consumers"]
    assert [(c["ConsumerName"], c["ConsumerStatus"]) for c in consumers] == [("fixture-consumer", "ACTIVE")]
    assert srv.stop() == 0
    log = srv.log_text()
    assert "damaged" not in log and "panicked" not in log, log


def test_a_keyring_of_a_newer_format_version_stops_the_start_naming_it(server_factory, tmp_path):
    """The data dir's one text file; damage to meta.redb and the segments is covered by
    crates/service/tests/format_damage.rs."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "data-dir", data)
    keyring = data / "kms" / "aws-kinesis.toml"
    keyring.write_text(keyring.read_text().replace("format_version = 1\n", "format_version = 2\n"))
    srv = server_factory(data_dir=data, start=False)
    with pytest.raises(RuntimeError) as exc:
        srv.start()
    text = str(exc.value)
    assert str(keyring) in text and "format_version 2 is newer" in text and "upgrade kinesin" in text, text
