"""`kinesin` CLI papercuts of issue 13, end to end against a server.

Pins: help texts carry no internal notes; every command that writes ends quietly with status 0
when its stdout is closed (`… | head`); `tail` escapes control bytes by default (text, json and
templates), `--raw` writes the bytes, kcat-style `--format` templates, `--count`, and
`--from at-timestamp:` with offsets, epoch seconds/millis and relative times; `stream scale`
tells a permanent rule (factor of 2, 24-hour budget) from a transient error and says what to do
instead of "retry"; `put`'s summary counts data bytes and says so; `kinesin health`.
"""

import base64
import datetime
import json
import os
import re
import subprocess
import time

import pytest

from kutil import free_port, kinesin_bin


def _env(endpoint, home):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),  # no ~/.aws: the dummy-credential fallback is what runs
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _runner(env):
    def run(*args, input=None, check=True, timeout=60, text=True, stdout=subprocess.PIPE):
        p = subprocess.run([kinesin_bin(), *args], env=env, input=input, stdout=stdout,
                           stderr=subprocess.PIPE, text=text, timeout=timeout)
        if check:
            assert p.returncode == 0, f"kinesin {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p

    run.env = env
    return run


@pytest.fixture
def cli(server, tmp_path):
    return _runner(_env(server.endpoint, tmp_path))


# --- help ----------------------------------------------------------------------------------

HELP_COMMANDS = [
    [], ["serve"], ["bench"], ["stream"], ["stream", "create"], ["stream", "list"],
    ["stream", "describe"], ["stream", "delete"], ["stream", "split"], ["stream", "merge"],
    ["stream", "scale"], ["stream", "retention"], ["put"], ["tail"], ["health"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "kinesin")
def test_help_reads_well(command):
    p = subprocess.run([kinesin_bin(), *command, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    # Notes for the code's readers (`///` comments clap shows) never reach the user.
    for leak in ["Boxed", "dwarf", "TODO", "FIXME", "clippy", "[`"]:
        assert leak not in out, f"`kinesin {' '.join(command)} --help` shows {leak!r}:\n{out}"
    # Every subcommand listed has a description.
    in_commands = False
    for line in out.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
            continue
        if in_commands:
            if not line.startswith("  "):
                break
            name, _, about = line.strip().partition(" ")
            assert about.strip(), f"subcommand {name} of `kinesin {' '.join(command)}` has no description"


def test_tail_help_documents_formats_and_positions():
    out = subprocess.run([kinesin_bin(), "tail", "--help"], capture_output=True, text=True, timeout=30).stdout
    for token in ["%s", "%S", "%k", "%K", "%p", "%o", "%T", "%t", "%%", "\\n", "\\t", "--raw", "--count",
                  "at-timestamp", "+02:00", "-5m", "epoch"]:
        assert token in out, f"tail --help does not document {token}"


# --- closed stdout ---------------------------------------------------------------------------

def _closed_stdout(args, env=None):
    """Runs kinesin with a stdout whose reader is already gone: every write gets EPIPE."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([kinesin_bin(), *args], env=env, stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    finally:
        os.close(w)
    return p


def test_closed_stdout_ends_quietly(cli, make_stream, server):
    name = make_stream(shards=2)
    cli("put", name, "one", "two", "three")
    for args in (["tail", name], ["tail", name, "--format", "json"], ["tail", name, "-f"],
                 ["stream", "list"], ["stream", "describe", name], ["put", name, "four"],
                 ["health", "--url", f"{server.endpoint}/health/ready"],
                 ["--help"], ["tail", "--help"], ["--version"]):
        p = _closed_stdout(args, env=cli.env)
        assert p.returncode == 0, f"kinesin {' '.join(args)} into a closed pipe: {p.returncode}\n{p.stderr}"
        assert p.stderr == "", f"kinesin {' '.join(args)} into a closed pipe printed:\n{p.stderr}"


def test_tail_into_head_exits_zero(cli, make_stream, kinesis):
    """The reported case: `kinesin tail s | head` with more output than a pipe holds."""
    name = make_stream(shards=1)
    for _ in range(4):
        kinesis.put_records(StreamName=name, Records=[
            {"Data": b"x" * 200, "PartitionKey": "k"} for _ in range(500)])
    p = subprocess.run(["bash", "-c", 'set -o pipefail; "$KINESIN" tail "$1" | head -n 2', "_", name],
                       env={**cli.env, "KINESIN": kinesin_bin()}, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("x" * 200 + "\n") * 2
    assert p.stderr == ""


# --- tail: safe output, --raw, templates, --count ---------------------------------------------

EVIL = [
    b"plain text",
    b"two\nlines",
    b"\x1b[2J\x1b]0;pwned\x07colour \x1b[31mred",
    b"tab\tcr\rnul\x00del\x7f",
    "c1 \u009b31m and bidi \u202eevil\u202c".encode(),
    b"invalid \xff\xfe utf-8",
    "caf\u00e9 \u2603 ok".encode(),
]


def _safe(out: bytes):
    assert b"\x1b" not in out and b"\x07" not in out and b"\x00" not in out and b"\r" not in out
    assert b"\x7f" not in out
    text = out.decode("utf-8")  # valid UTF-8 even for invalid input
    for ch in ("\u009b", "\u202e", "\u202c"):
        assert ch not in text


def test_tail_escapes_by_default(cli, make_stream, kinesis):
    name = make_stream(shards=1)
    for data in EVIL:
        kinesis.put_record(StreamName=name, Data=data, PartitionKey="key\x1b[0m")
    out = cli("tail", name, text=False).stdout
    _safe(out)
    lines = out.decode().split("\n")
    assert lines[-1] == "" and len(lines) == len(EVIL) + 1  # one line per record
    assert lines[:-1] == [
        "plain text",
        "two\\nlines",
        "\\x1b[2J\\x1b]0;pwned\\x07colour \\x1b[31mred",
        "tab\\tcr\\rnul\\x00del\\x7f",
        "c1 \\u{009b}31m and bidi \\u{202e}evil\\u{202c}",
        "invalid \\xff\\xfe utf-8",
        "caf\u00e9 \u2603 ok",
    ]
    # --raw: the bytes as they are.
    assert cli("tail", name, "--raw", text=False).stdout == b"".join(d + b"\n" for d in EVIL)
    assert cli("tail", name, "--raw", "--format", "%s", text=False).stdout == b"".join(EVIL)

    # json: one parseable line per record, terminal-safe, data_base64 exact.
    out = cli("tail", name, "--format", "json", text=False).stdout
    _safe(out)
    recs = [json.loads(x) for x in out.decode().splitlines()]
    assert len(recs) == len(EVIL)
    assert [base64.b64decode(r["data_base64"]) for r in recs] == EVIL
    assert recs[2]["data"] == EVIL[2].decode() and recs[0]["partition_key"] == "key\x1b[0m"
    assert "data" not in recs[5]  # invalid UTF-8: only data_base64

    # hex is safe as it is; --raw does not apply to it.
    assert cli("tail", name, "--format", "hex").stdout.splitlines()[0] == b"plain text".hex()
    p = cli("tail", name, "--format", "json", "--raw", check=False)
    assert p.returncode == 2 and "--raw" in p.stderr


def test_tail_templates(cli, make_stream, kinesis):
    name = make_stream(shards=2)
    put = kinesis.put_record(StreamName=name, Data=b"hello\nworld", PartitionKey="user-7")
    got = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName=name, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"])
    arrival_ms = round(got["Records"][0]["ApproximateArrivalTimestamp"].timestamp() * 1000)
    out = cli("tail", name, "--format", "%t|%p|%o|%T|%k|%K|%S|%s|100%%\\t\\x41\\n").stdout
    assert out == (f"{name}|{put['ShardId']}|{put['SequenceNumber']}|{arrival_ms}|user-7|6|11|"
                   "hello\\nworld|100%\tA\n")
    assert cli("tail", name, "--raw", "--format", "%k=%s;").stdout == "user-7=hello\nworld;"
    for bad, says in [("%q", "unknown token %q"), ("yaml", "expected text, json, hex"),
                      ("\\q", "unknown escape"), ("%", "lone %")]:
        p = cli("tail", name, "--format", bad, check=False)
        assert p.returncode == 2 and says in p.stderr, p.stderr
        assert p.stdout == ""


def test_tail_count(cli, make_stream, kinesis):
    name = make_stream(shards=3)
    kinesis.put_records(StreamName=name, Records=[
        {"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(30)])
    assert len(cli("tail", name, "--count", "7").stdout.splitlines()) == 7
    assert len(cli("tail", name, "-c", "30").stdout.splitlines()) == 30
    assert len(cli("tail", name, "-c", "100").stdout.splitlines()) == 30  # without -f: the tip ends it
    # With -f, --count ends the command once N records are printed.
    assert len(cli("tail", name, "-f", "-c", "12", timeout=30).stdout.splitlines()) == 12
    p = cli("tail", name, "--count", "0", check=False)
    assert p.returncode == 2


def test_tail_follow_count_waits_for_new_records(cli, make_stream, kinesis):
    name = make_stream(shards=2)
    proc = subprocess.Popen([kinesin_bin(), "tail", name, "-f", "--from", "latest", "--count", "1"],
                            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        n = 0
        # Keep writing until the reader (whose LATEST iterators start at an unknown moment)
        # has seen one record and ended by itself.
        while proc.poll() is None and time.time() < deadline:
            kinesis.put_record(StreamName=name, Data=f"new-{n}".encode(), PartitionKey=f"k{n}")
            n += 1
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        assert proc.returncode == 0, proc.stderr.read()
        lines = proc.stdout.read().splitlines()
        assert len(lines) == 1 and lines[0].startswith("new-")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- tail --from at-timestamp ----------------------------------------------------------------

def test_tail_from_timestamp_forms(cli, make_stream, kinesis):
    name = make_stream(shards=1)
    kinesis.put_record(StreamName=name, Data=b"first", PartitionKey="k")
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first_ms = round(kinesis.get_records(ShardIterator=it)["Records"][0]
                     ["ApproximateArrivalTimestamp"].timestamp() * 1000)
    # The second record must arrive in a later millisecond than the first.
    while int(time.time() * 1000) <= first_ms + 1:
        pass
    kinesis.put_record(StreamName=name, Data=b"second", PartitionKey="k")

    between = first_ms + 1  # after "first", not after "second"
    utc = datetime.datetime.fromtimestamp(between / 1000, tz=datetime.timezone.utc)
    plus2 = utc.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    minus0430 = utc.astimezone(datetime.timezone(-datetime.timedelta(hours=4, minutes=30)))
    for at in [
        utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        plus2.isoformat(timespec="milliseconds"),            # 2026-12-04T22:00:00.123+02:00
        minus0430.isoformat(timespec="milliseconds"),
        str(between),                                        # epoch milliseconds
        f"{between // 1000}.{between % 1000:03d}",           # epoch seconds with a fraction
    ]:
        p = cli("tail", name, "--from", f"at-timestamp:{at}", check=False)
        assert p.returncode == 0, f"at-timestamp:{at}: {p.stderr}"
        assert p.stdout == "second\n", f"at-timestamp:{at} gave {p.stdout!r}"
    # Relative to now: the last day holds both records.
    assert cli("tail", name, "--from", "at-timestamp:-1d").stdout == "first\nsecond\n"
    assert cli("tail", name, "--from", "at-timestamp:-2h").stdout == "first\nsecond\n"
    # After both (as a -05:00 offset): none. (A time in the future is refused, as by AWS.)
    second_ms = round(kinesis.get_records(ShardIterator=it)["Records"][1]
                      ["ApproximateArrivalTimestamp"].timestamp() * 1000)
    while int(time.time() * 1000) <= second_ms + 1:
        pass
    after = datetime.datetime.fromtimestamp((second_ms + 1) / 1000,
                                            tz=datetime.timezone(-datetime.timedelta(hours=5)))
    assert cli("tail", name, "--from", f"at-timestamp:{after.isoformat(timespec='milliseconds')}").stdout == ""
    for bad in ["yesterday", "-5y", "2026-12-04T10:00:00", "2026-13-01T00:00:00Z"]:
        p = cli("tail", name, "--from", f"at-timestamp:{bad}", check=False)
        assert p.returncode == 2, bad
        assert "RFC 3339" in p.stderr and "-5m" in p.stderr, p.stderr


# --- stream scale: permanent rules -------------------------------------------------------------

def test_scale_factor_of_two_rule_says_what_to_do(cli, make_stream, kinesis):
    name = make_stream(shards=1)
    p = cli("stream", "scale", name, "4", check=False)
    assert p.returncode == 1
    assert "LimitExceededException" in p.stderr
    assert "wait a moment and retry" not in p.stderr
    assert "fails the same way" in p.stderr
    assert f"`kinesin stream scale {name} 2`, then `kinesin stream scale {name} 4`" in p.stderr, p.stderr
    # The steps it gives do pass.
    cli("stream", "scale", name, "2")
    cli("stream", "scale", name, "4")
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 4
    p = cli("stream", "scale", name, "1", check=False)
    assert f"`kinesin stream scale {name} 2`, then `kinesin stream scale {name} 1`" in p.stderr, p.stderr


def test_scale_daily_budget_is_not_retry(server_factory, tmp_path):
    srv = server_factory(ephemeral=True, args=["--scalings-per-day", "1", "--create-stream-ms", "0",
                                               "--update-stream-ms", "0"])
    run = _runner(_env(srv.endpoint, tmp_path))
    run("stream", "create", "budget", "--shards", "1")
    run("stream", "scale", "budget", "2")
    p = run("stream", "scale", "budget", "1", check=False)
    assert p.returncode == 1 and "LimitExceededException" in p.stderr
    assert "wait a moment and retry" not in p.stderr
    assert "24 hours" in p.stderr and "kinesin stream split" in p.stderr, p.stderr
    # What it suggests instead passes.
    run("stream", "merge", "budget", "shardId-000000000001", "shardId-000000000002")


# --- put: bytes in the summary ----------------------------------------------------------------

def test_put_summary_counts_data_bytes(cli, make_stream, tmp_path):
    name = make_stream(shards=1)
    p = cli("put", name, "a", "bb", "ccc", "--partition-key", "fixed:key-12345")
    assert "put 3 records (6 bytes of data, 33 with partition keys)" in p.stderr, p.stderr
    f = tmp_path / "in.txt"
    f.write_bytes(b"one\r\n\r\ntwo\n\nthree")  # CRLF, empty lines, no final newline
    p = cli("put", name, "--file", str(f), "--partition-key", "k")
    assert "put 3 records (11 bytes of data, 14 with partition keys)" in p.stderr, p.stderr


# --- health ------------------------------------------------------------------------------------

def test_health_command(server):
    ok = subprocess.run([kinesin_bin(), "health", "--url", f"{server.endpoint}/health/ready"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "200" in ok.stdout, ok.stderr
    # The default URL follows KINESIN_LISTEN (an unspecified address is asked on the loopback).
    env = {"PATH": os.environ.get("PATH", ""), "KINESIN_LISTEN": f"0.0.0.0:{server.port}"}
    ok = subprocess.run([kinesin_bin(), "health"], env=env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and f"127.0.0.1:{server.port}/health/ready" in ok.stdout, ok.stderr
    down = subprocess.run([kinesin_bin(), "health", "--url", f"http://127.0.0.1:{free_port()}/health/ready"],
                          capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "cannot connect" in down.stderr
    missing = subprocess.run([kinesin_bin(), "health", "--url", f"{server.endpoint}/no-such-path"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and re.search(r"answered [45]\d\d", missing.stderr), missing.stderr
