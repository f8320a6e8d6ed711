"""`kinesin stream|put|tail`, the CLI in the server's binary, end to end against a server.

(`test_cli.py` is the AWS CLI's suite.) Pins: every stream subcommand works against a local
server with no credentials configured (dummy credentials for a local endpoint); put batches
arguments, stdin lines and files with each partition-key rule; tail reads every shard parents
first, stops at the tip without -f, follows a split with -f; bad input exits 2 with a message
and AWS errors exit 1 with the error code and a hint.
"""

import json
import os
import subprocess
import threading
import time

import pytest

from kutil import kinesin_bin, unique_name


@pytest.fixture
def cli(server, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),  # no ~/.aws: the dummy-credential fallback is what runs
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def run(*args, input=None, check=True, timeout=60):
        p = subprocess.run([kinesin_bin(), *args], env=env, input=input, capture_output=True,
                           text=True, timeout=timeout)
        if check:
            assert p.returncode == 0, f"kinesin {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p

    run.env = env
    return run


def test_stream_lifecycle(cli, kinesis):
    name = unique_name("cli")
    assert "created stream" in cli("stream", "create", name, "--shards", "2").stdout
    assert name in cli("stream", "list").stdout.split()
    d = cli("stream", "describe", name).stdout
    assert "status:      ACTIVE" in d and "open shards: 2" in d
    assert "shardId-000000000000" in d and "shardId-000000000001" in d

    cli("stream", "split", name, "shardId-000000000000")
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert len(shards) == 4
    assert [s["ParentShardId"] for s in shards[2:]] == ["shardId-000000000000"] * 2
    cli("stream", "merge", name, "shardId-000000000002", "shardId-000000000003")
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2
    out = cli("stream", "scale", name, "4").stdout
    assert "to 4 open shards" in out
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 4
    cli("stream", "retention", name, "48")
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    cli("stream", "retention", name, "24")
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 24
    cli("stream", "delete", name)
    deadline = time.time() + 10
    while name in cli("stream", "list").stdout.split() and time.time() < deadline:
        time.sleep(0.1)
    assert name not in cli("stream", "list").stdout.split()


def test_on_demand_create(cli, kinesis):
    name = unique_name("clid")
    cli("stream", "create", name, "--on-demand")
    assert "mode:        ON_DEMAND" in cli("stream", "describe", name).stdout
    cli("stream", "delete", name)


def test_put_and_tail_round_trip(cli, make_stream, tmp_path):
    name = make_stream(shards=3)
    p = cli("put", name, "a", "b", "c", "--partition-key", "fixed:k1")
    lines = p.stdout.split()
    assert len(lines) == 6 and len({lines[0], lines[2], lines[4]}) == 1  # one shard: fixed key
    assert "put 3 records" in p.stderr

    stdin = "".join(json.dumps({"user": f"u{i % 5}", "n": i}) + "\n" for i in range(1200))
    p = cli("put", name, "--partition-key", "json:user", input=stdin)
    assert "put 1200 records" in p.stderr

    f = tmp_path / "records.txt"
    f.write_text("".join(f"line-{i}\n" for i in range(50)))
    cli("put", name, "--file", str(f), "--partition-key", "hash")

    out = cli("tail", name).stdout.splitlines()
    assert len(out) == 3 + 1200 + 50
    assert set(out[:0]) <= set()
    assert {"a", "b", "c"} <= set(out)
    assert {f"line-{i}" for i in range(50)} <= set(out)
    # json:user keeps one user's records in order (one shard per key).
    per_user = {}
    for line in out:
        if line.startswith("{"):
            rec = json.loads(line)
            per_user.setdefault(rec["user"], []).append(rec["n"])
    assert sum(len(v) for v in per_user.values()) == 1200
    for ns in per_user.values():
        assert ns == sorted(ns)

    js = [json.loads(x) for x in cli("tail", name, "--format", "json").stdout.splitlines()]
    assert len(js) == 1253
    first = next(j for j in js if j["data"] == "a")
    assert first["partition_key"] == "k1" and first["shard_id"].startswith("shardId-")
    assert {"sequence_number", "approximate_arrival_timestamp", "data_base64"} <= first.keys()
    hexed = cli("tail", name, "--format", "hex").stdout.splitlines()
    assert "61" in hexed  # "a"

    # at-sequence: from a's record (its shard and descendants only).
    seq = first["sequence_number"]
    out = cli("tail", name, "--from", f"at-sequence:{seq}").stdout.splitlines()
    assert out[:3] == ["a", "b", "c"]
    # at-timestamp in the future of every record: nothing.
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    time.sleep(1.2)
    assert cli("tail", name, "--from", f"at-timestamp:{later}").stdout == ""
    # latest without -f: nothing new.
    assert cli("tail", name, "--from", "latest").stdout == ""


def test_tail_follows_a_split(cli, make_stream, kinesis):
    name = make_stream(shards=1)
    cli("put", name, "before", "--partition-key", "k")
    proc = subprocess.Popen([kinesin_bin(), "tail", name, "-f"], env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 10
        while "before\n" not in lines and time.time() < deadline:
            time.sleep(0.1)
        assert "before\n" in lines
        cli("stream", "split", name, "shardId-000000000000")
        # After the split, records land in the children; tail finds them through ChildShards.
        cli("put", name, *[f"after-{i}" for i in range(20)], "--partition-key", "random")
        deadline = time.time() + 15
        while len(lines) < 21 and time.time() < deadline:
            time.sleep(0.1)
        assert sorted(lines) == sorted(["before\n"] + [f"after-{i}\n" for i in range(20)])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_input_and_aws_errors(cli, make_stream):
    p = cli("tail", "nope", "--from", "yesterday", check=False)
    assert p.returncode == 2 and "--from yesterday" in p.stderr
    name = make_stream(shards=1)
    p = cli("put", name, "--partition-key", "json:user", input="not json\n", check=False)
    assert p.returncode == 2 and "record 1 is not JSON" in p.stderr
    p = cli("put", name, "x", "--partition-key", "", check=False)
    assert p.returncode == 2
    p = cli("stream", "describe", unique_name("missing"), check=False)
    assert p.returncode == 1
    assert "ResourceNotFoundException" in p.stderr and "hint:" in p.stderr
    p = cli("stream", "create", name, check=False)
    assert p.returncode == 1 and "ResourceInUseException" in p.stderr
    p = cli("stream", "list", "--endpoint-url", "http://127.0.0.1:9", check=False)
    assert p.returncode == 1 and "could not reach" in p.stderr and "kinesin serve" in p.stderr
