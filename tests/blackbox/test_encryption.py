"""Encryption at rest: StartStreamEncryption / StopStreamEncryption with kinesin's KMS keyring.

Pins that every KeyId form AWS accepts works (key id, key ARN, alias, alias ARN, and the
zero-config alias/aws/kinesis), that unknown / disabled / denied / invalid-state keys answer
the KMS exceptions, that EncryptionType is reported on puts, reads and DescribeStream(Summary),
that a marker written while encryption is on appears in no file of the data dir (segments,
indexes, metadata) yet reads back intact through GetRecords and SubscribeToShard, while a
marker written before encryption *is* found (so the scan can fail), that a new master key
keeps old records readable, that everything survives a restart, and that a key disabled in
the keyring (then a restart) turns puts and reads of its records into KMSDisabledException.
"""
import base64
import os
import uuid
from pathlib import Path

import pytest

from kutil import expect_client_error, make_client, read_shard, stream_arn, unique_name, wait_status

REGION = "us-east-1"
ACCOUNT = "000000000000"
SHARD = "shardId-000000000000"


def key_entry(alias, material, **extra):
    kid = str(uuid.uuid4())
    lines = ["[[key]]", f'id = "{kid}"', f'aliases = ["{alias}"]']
    if material is not None:
        lines.append(f'material = "{material}"')
    for k, v in extra.items():
        lines.append(f"{k} = {v}")
    return kid, "\n".join(lines) + "\n"


@pytest.fixture
def keyring(tmp_path):
    """A keyring with two usable keys and one of each unusable kind."""
    mats = {a: base64.b64encode(os.urandom(32)).decode() for a in ["a", "b", "off", "deny"]}
    keys, text = {}, ""
    for alias, extra in [
        ("alias/a", {}),
        ("alias/b", {}),
        ("alias/off", {"enabled": "false"}),
        ("alias/deny", {"deny": "true"}),
        ("alias/pending", {"state": '"PendingDeletion"'}),
    ]:
        short = alias.split("/")[1]
        kid, entry = key_entry(alias, mats.get(short), **extra)
        keys[alias] = kid
        text += entry
    path = tmp_path / "keyring.toml"
    path.write_text(text)
    return {"path": path, "ids": keys, "materials": mats, "text": text}


def start_server(server_factory, tmp_path, keyring, update_ms="0", data=None):
    data = data or tmp_path / "data"
    data.mkdir(exist_ok=True)
    srv = server_factory(
        data_dir=data,
        args=["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", update_ms,
              "--kms-keyring", str(keyring["path"])],
    )
    return srv, make_client(srv.endpoint), data


def new_stream(k, shards=1):
    name = unique_name("enc")
    k.create_stream(StreamName=name, ShardCount=shards)
    wait_status(k, name)
    return name


def summary(k, name):
    return k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def files_containing(root, needle):
    hits = []
    for p in Path(root).rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            hits.append(str(p))
    return hits


def test_start_and_stop_with_every_key_id_form(server_factory, tmp_path, keyring):
    srv, k, _ = start_server(server_factory, tmp_path, keyring, update_ms="300")
    name = new_stream(k)
    kid = keyring["ids"]["alias/a"]
    forms = [
        kid,
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{kid}",
        "alias/a",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/a",
        "alias/aws/kinesis",
    ]
    for form in forms:
        k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=form)
        assert summary(k, name)["StreamStatus"] == "UPDATING"
        wait_status(k, name)
        s = summary(k, name)
        assert (s["EncryptionType"], s["KeyId"]) == ("KMS", form)
        d = k.describe_stream(StreamName=name)["StreamDescription"]
        assert (d["EncryptionType"], d["KeyId"]) == ("KMS", form)
        r = k.put_record(StreamName=name, PartitionKey="pk", Data=b"x")
        assert r["EncryptionType"] == "KMS"
        # Stop accepts the key in any form naming the same key (here: its key ARN or id).
        k.stop_stream_encryption(StreamARN=stream_arn(name), EncryptionType="KMS", KeyId=form)
        wait_status(k, name)
        s = summary(k, name)
        assert s["EncryptionType"] == "NONE" and "KeyId" not in s
        assert k.put_record(StreamName=name, PartitionKey="pk", Data=b"y")["EncryptionType"] == "NONE"
    records = read_shard(k, name, SHARD)
    assert [r.get("EncryptionType") for r in records] == ["KMS", None] * len(forms)


def test_kms_errors(server_factory, tmp_path, keyring):
    srv, k, _ = start_server(server_factory, tmp_path, keyring)
    name = new_stream(k)
    start = k.start_stream_encryption
    for key_id, code in [
        ("alias/nope", "KMSNotFoundException"),
        (str(uuid.uuid4()), "KMSNotFoundException"),
        (f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/a", "KMSNotFoundException"),
        ("alias/off", "KMSDisabledException"),
        ("alias/deny", "KMSAccessDeniedException"),
        ("alias/pending", "KMSInvalidStateException"),
    ]:
        e = expect_client_error(start, code, StreamName=name, EncryptionType="KMS", KeyId=key_id)
        assert "keyring" in e.response["Error"]["Message"]
    expect_client_error(start, "InvalidArgumentException", StreamName=name, EncryptionType="NONE", KeyId="alias/a")
    expect_client_error(start, "ResourceNotFoundException", StreamName="nope", EncryptionType="KMS", KeyId="alias/a")
    stop = k.stop_stream_encryption
    expect_client_error(stop, "InvalidArgumentException", StreamName=name, EncryptionType="KMS", KeyId="alias/a")
    start(StreamName=name, EncryptionType="KMS", KeyId="alias/a")
    wait_status(k, name)
    expect_client_error(stop, "InvalidArgumentException", StreamName=name, EncryptionType="KMS", KeyId="alias/b")
    assert summary(k, name)["EncryptionType"] == "KMS"


def test_marker_is_encrypted_on_disk_and_read_back(server_factory, tmp_path, keyring):
    srv, k, data = start_server(server_factory, tmp_path, keyring)
    name = new_stream(k)
    plain = b"PLAINTEXT-MARKER-" + uuid.uuid4().hex.encode()
    secret = b"SECRET-MARKER-" + uuid.uuid4().hex.encode()
    secret_key = "SECRETKEY-" + uuid.uuid4().hex
    r = k.put_record(StreamName=name, PartitionKey="plain", Data=plain)
    assert r["EncryptionType"] == "NONE"
    k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    wait_status(k, name)
    assert k.put_record(StreamName=name, PartitionKey=secret_key, Data=secret)["EncryptionType"] == "KMS"
    rs = k.put_records(StreamName=name, Records=[{"PartitionKey": secret_key, "Data": secret + b"-%d" % i}
                                                  for i in range(20)])
    assert rs["FailedRecordCount"] == 0 and rs["EncryptionType"] == "KMS"

    def check_disk():
        assert files_containing(data, plain), "the plaintext marker should be on disk (the scan must be able to fail)"
        assert files_containing(data, secret) == []
        assert files_containing(data, secret_key.encode()) == []

    check_disk()
    # Read back intact: GetRecords ...
    records = read_shard(k, name, SHARD)
    assert [r["Data"] for r in records] == [plain, secret] + [secret + b"-%d" % i for i in range(20)]
    assert [r["PartitionKey"] for r in records] == ["plain"] + [secret_key] * 21
    assert [r.get("EncryptionType") for r in records] == [None] + ["KMS"] * 21
    # ... and SubscribeToShard.
    arn = stream_arn(name)
    consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]["ConsumerARN"]
    got = []
    sub = k.subscribe_to_shard(ConsumerARN=consumer, ShardId=SHARD, StartingPosition={"Type": "TRIM_HORIZON"})
    for ev in sub["EventStream"]:
        got += ev["SubscribeToShardEvent"]["Records"]
        if len(got) >= 22:
            break
    assert [r["Data"] for r in got] == [r["Data"] for r in records]
    assert [r.get("EncryptionType") for r in got] == [None] + ["KMS"] * 21
    # After a graceful stop (indexes written) nothing leaks either, and a restart reads it all.
    assert srv.stop() == 0, srv.log_text()
    check_disk()
    managed = data / "kms" / "aws-kinesis.toml"
    assert managed.stat().st_mode & 0o777 == 0o600
    srv.start()
    k = make_client(srv.endpoint)
    assert [r["Data"] for r in read_shard(k, name, SHARD)] == [r["Data"] for r in records]


def test_rotation_restart_and_disabled_key(server_factory, tmp_path, keyring):
    srv, k, data = start_server(server_factory, tmp_path, keyring)
    name = new_stream(k)
    other = new_stream(k)
    k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/a")
    wait_status(k, name)
    k.put_record(StreamName=name, PartitionKey="p", Data=b"under-a")
    # Rotation: another master key adds a data-key generation; old records stay readable.
    k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/b")
    wait_status(k, name)
    assert summary(k, name)["KeyId"] == "alias/b"
    k.put_record(StreamName=name, PartitionKey="p", Data=b"under-b")
    k.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/b")
    wait_status(k, name)
    k.put_record(StreamName=name, PartitionKey="p", Data=b"plain-after")
    want = [(b"under-a", "KMS"), (b"under-b", "KMS"), (b"plain-after", None)]
    got = [(r["Data"], r.get("EncryptionType")) for r in read_shard(k, name, SHARD)]
    assert got == want
    k.start_stream_encryption(StreamName=other, EncryptionType="KMS", KeyId="alias/a")
    wait_status(k, other)
    k.put_record(StreamName=other, PartitionKey="p", Data=b"other-under-a")

    # Restart: all readable.
    assert srv.stop() == 0, srv.log_text()
    srv.start()
    k = make_client(srv.endpoint)
    assert [(r["Data"], r.get("EncryptionType")) for r in read_shard(k, name, SHARD)] == want

    # Disable key a in the keyring and restart: puts to a stream encrypted with it and reads of
    # its records answer KMSDisabledException; the rest keeps working; nothing crashes.
    keyring["path"].write_text(
        keyring["text"].replace('aliases = ["alias/a"]', 'aliases = ["alias/a"]\nenabled = false')
    )
    assert srv.stop() == 0, srv.log_text()
    srv.start()
    k = make_client(srv.endpoint)
    expect_client_error(k.put_record, "KMSDisabledException", StreamName=other, PartitionKey="p", Data=b"z")
    expect_client_error(k.put_records, "KMSDisabledException", StreamName=other,
                        Records=[{"PartitionKey": "p", "Data": b"z"}])
    it = k.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    expect_client_error(k.get_records, "KMSDisabledException", ShardIterator=it)
    # Encryption is off on this stream: new puts are plain and need no key.
    assert k.put_record(StreamName=name, PartitionKey="p", Data=b"still-plain")["EncryptionType"] == "NONE"
    assert summary(k, name)["StreamStatus"] == "ACTIVE"
    # Re-enable: everything reads again.
    keyring["path"].write_text(keyring["text"])
    assert srv.stop() == 0, srv.log_text()
    srv.start()
    k = make_client(srv.endpoint)
    assert [r["Data"] for r in read_shard(k, name, SHARD)] == [b"under-a", b"under-b", b"plain-after", b"still-plain"]
    assert [r["Data"] for r in read_shard(k, other, SHARD)] == [b"other-under-a"]


def test_bad_keyring_stops_the_start_with_a_message(server_factory, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[key]]\nid = "not-a-uuid"\nmaterial = "AAAA"\n')
    data = tmp_path / "d"
    data.mkdir()
    srv = server_factory(data_dir=data, args=["--kms-keyring", str(bad)], start=False)
    with pytest.raises(RuntimeError, match="UUID"):
        srv.start(timeout=10)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_changed_ciphertext_is_detected_and_never_served(server_factory, tmp_path, keyring):
    srv, k, data = start_server(server_factory, tmp_path, keyring)
    name = new_stream(k)
    k.put_record(StreamName=name, PartitionKey="p", Data=b"plain-before")
    k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/a")
    wait_status(k, name)
    k.put_record(StreamName=name, PartitionKey="p", Data=b"to-be-tampered")
    assert srv.stop() == 0, srv.log_text()
    # Find the encrypted batch (flags bit 0), change one ciphertext byte, fix the checksum.
    changed = 0
    for seg in Path(data, "log").rglob("*.seg"):
        raw = bytearray(seg.read_bytes())
        at = 32
        while at + 32 <= len(raw):
            blen = int.from_bytes(raw[at:at + 4], "little")
            flags = int.from_bytes(raw[at + 28:at + 32], "little")
            if flags & 1:
                raw[at + 50] ^= 0x01
                body = bytes(raw[at + 32:at + blen]) + bytes(raw[at:at + 4]) + bytes(raw[at + 8:at + 32])
                raw[at + 4:at + 8] = crc32c(body).to_bytes(4, "little")
                changed += 1
            at += blen
        seg.write_bytes(bytes(raw))
    assert changed == 1
    srv.start()
    k = make_client(srv.endpoint)
    it = k.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = k.get_records(ShardIterator=it, Limit=1)
    assert [r["Data"] for r in first["Records"]] == [b"plain-before"]
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as e:
        k.get_records(ShardIterator=first["NextShardIterator"])
    assert e.value.response["Error"]["Code"] == "InternalFailureException"
    assert "integrity" in e.value.response["Error"]["Message"]
    # Nothing else is harmed: new records are written and read after it.
    k.put_record(StreamName=name, PartitionKey="p", Data=b"after")
    it = k.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="LATEST")["ShardIterator"]
    k.put_record(StreamName=name, PartitionKey="p", Data=b"after-latest")
    assert [r["Data"] for r in k.get_records(ShardIterator=it)["Records"]] == [b"after-latest"]
