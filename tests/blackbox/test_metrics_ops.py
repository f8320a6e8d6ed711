"""Per-operation request metrics, process gauges and build info on GET /metrics, and the Grafana
dashboard in contrib/grafana that charts them.

Pins: every request naming a known operation is counted under it, whatever stopped it
(validation, not found, missing authentication, throttling); errors by their `__type`; latency
as a histogram in seconds; unknown operations get no series; the `process_*` gauges agree with
/proc; `kinesin_build_info` names the binary's version; every metric the dashboard queries is
exported by a running server and documented in docs/metrics.md.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kutil import kinesin_bin, unique_name, wait_status
from test_metrics import scrape, series, value

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "kinesin.json"
DOCS = ROOT / "docs" / "metrics.md"


def requests_of(m, op):
    return value(m, "kinesin_requests_total", operation=op) or 0


def errors_of(m, op, code):
    return value(m, "kinesin_request_errors_total", operation=op, error_code=code) or 0


def latency_count(m, op):
    return value(m, "kinesin_request_duration_seconds_count", operation=op) or 0


def test_requests_errors_and_latency_move_by_operation(server, kinesis, raw, make_stream):
    name = make_stream(shards=1)
    before = scrape(server.endpoint)
    # Every operation has its request counter from the start, at 0 if never called.
    assert value(before, "kinesin_requests_total", operation="UpdateStreamWarmThroughput") is not None

    for i in range(3):
        kinesis.put_record(StreamName=name, PartitionKey=f"k{i}", Data=b"hello")
    # Rejected by validation, by the operation (no such stream), and before either (unsigned).
    r = raw.call("PutRecord", {"StreamName": "not a valid name", "PartitionKey": "k", "Data": "aGk="})
    assert r.error_type == "ValidationException", r
    r = raw.call("PutRecord", {"StreamName": unique_name("missing"), "PartitionKey": "k", "Data": "aGk="})
    assert r.error_type == "ResourceNotFoundException", r
    r = raw.call("PutRecord", {"StreamName": name, "PartitionKey": "k", "Data": "aGk="}, sign=False)
    assert r.error_type == "MissingAuthenticationTokenException", r
    # Not a known operation: answered, but counted under no operation.
    r = raw.request("Kinesis_20131202.NoSuchOperation", {})
    assert r.error_type == "UnknownOperationException", r
    after = scrape(server.endpoint)

    def delta(f, *args):
        return f(after, *args) - f(before, *args)

    assert delta(requests_of, "PutRecord") == 6
    assert delta(errors_of, "PutRecord", "ValidationException") == 1
    assert delta(errors_of, "PutRecord", "ResourceNotFoundException") == 1
    assert delta(errors_of, "PutRecord", "MissingAuthenticationTokenException") == 1
    assert delta(latency_count, "PutRecord") == 6
    total = lambda m: sum(series(m, "kinesin_requests_total").values())  # noqa: E731
    assert total(after) - total(before) == 6, "only the six PutRecord calls were made"
    assert not any(dict(k[1]).get("operation") == "NoSuchOperation" for k in after)

    # The histogram is well formed: cumulative buckets in seconds, +Inf equal to the count.
    buckets = {dict(k)["le"]: v for k, v in series(after, "kinesin_request_duration_seconds_bucket",
                                                   operation="PutRecord").items()}
    bounds = sorted((float(le), n) for le, n in buckets.items())
    assert bounds[-1][0] == float("inf") and bounds[-1][1] == latency_count(after, "PutRecord")
    assert [n for _, n in bounds] == sorted(n for _, n in bounds)
    assert 0.0001 in dict(bounds) and 10.0 in dict(bounds), "bounds are seconds, 100 µs to 10 s"
    s = value(after, "kinesin_request_duration_seconds_sum", operation="PutRecord")
    assert 0 < s - (value(before, "kinesin_request_duration_seconds_sum", operation="PutRecord") or 0) < 60

    # The operation's own errors move the same way: DescribeStreamSummary not found / invalid.
    op = "DescribeStreamSummary"
    r = raw.call(op, {"StreamName": unique_name("missing")})
    assert r.error_type == "ResourceNotFoundException", r
    r = raw.call(op, {"StreamName": "x" * 129})
    assert r.error_type == "ValidationException", r
    again = scrape(server.endpoint)
    assert requests_of(again, op) - requests_of(after, op) == 2
    assert errors_of(again, op, "ResourceNotFoundException") - errors_of(after, op, "ResourceNotFoundException") == 1
    assert errors_of(again, op, "ValidationException") - errors_of(after, op, "ValidationException") == 1
    # Error series exist only once something failed with that code.
    assert value(again, "kinesin_request_errors_total", operation="PutRecord",
                 error_code="KMSThrottlingException") is None


def test_throttled_calls_are_counted_as_errors(server_factory):
    srv = server_factory(ephemeral=True, args=["--limits", "aws", "--create-stream-ms", "0"])
    k = srv.client()
    name = unique_name("thr")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    sid = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
    # GetRecords: 5 calls per second per shard.
    calls = throttled = 0
    for _ in range(12):
        calls += 1
        try:
            it = k.get_records(ShardIterator=it)["NextShardIterator"]
        except k.exceptions.ProvisionedThroughputExceededException:
            throttled += 1
    assert throttled > 0
    m = scrape(srv.endpoint)
    assert requests_of(m, "GetRecords") == calls
    assert errors_of(m, "GetRecords", "ProvisionedThroughputExceededException") == throttled
    assert latency_count(m, "GetRecords") == calls
    assert value(m, "kinesis_read_provisioned_throughput_exceeded_total", stream_name=name) == throttled


def test_authentication_and_authorization_refusals_are_counted(server_factory, tmp_path):
    creds = tmp_path / "credentials.toml"
    creds.write_text(
        '[[principal]]\narn = "arn:aws:iam::000000000000:user/admin"\n'
        'access_key_id = "AKIDADMIN"\nsecret_access_key = "admin-secret"\n\n'
        '[[principal]]\narn = "arn:aws:iam::000000000000:user/outsider"\n'
        'access_key_id = "AKIDOUTSIDER"\nsecret_access_key = "outsider-secret"\npolicies = []\n'
    )
    srv = server_factory(ephemeral=True, args=["--credentials", str(creds)])

    def client(key, secret):
        return boto3.session.Session().client(
            "kinesis", endpoint_url=srv.endpoint, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))

    client("AKIDADMIN", "admin-secret").list_streams()
    for key, secret, code in [("AKIDOUTSIDER", "outsider-secret", "AccessDeniedException"),
                              ("AKIDNOBODY", "x", "UnrecognizedClientException"),
                              ("AKIDADMIN", "wrong-secret", "InvalidSignatureException")]:
        with pytest.raises(ClientError) as e:
            client(key, secret).list_streams()
        assert e.value.response["Error"]["Code"] == code
    m = scrape(srv.endpoint)
    assert requests_of(m, "ListStreams") == 4
    assert series(m, "kinesin_request_errors_total", operation="ListStreams") == {
        (("error_code", code), ("operation", "ListStreams")): 1.0
        for code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException")
    }


def proc_status_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def test_process_gauges_are_sane(server_factory):
    t0 = time.time()
    srv = server_factory(ephemeral=True)
    t1 = time.time()
    k = srv.client()
    k.list_streams()
    m = scrape(srv.endpoint)
    pid = srv.proc.pid

    start = value(m, "process_start_time_seconds")
    # /proc gives the start in clock ticks after a boot time rounded to the second.
    assert t0 - 1.5 <= start <= t1 + 1.5, (t0, start, t1)

    rss = value(m, "process_resident_memory_bytes")
    rss_proc = proc_status_kib(pid, "VmRSS") * 1024
    assert 1 << 20 < rss < 8 << 30
    assert abs(rss - rss_proc) <= max(rss_proc // 2, 16 << 20), (rss, rss_proc)
    assert value(m, "process_virtual_memory_bytes") >= rss
    assert value(m, "process_threads") >= 2

    fds = value(m, "process_open_fds")
    assert abs(fds - len(os.listdir(f"/proc/{pid}/fd"))) <= 8
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft = re.search(r"^Max open files\s+(\S+)", limits, re.M).group(1)
    assert value(m, "process_max_fds") == (float("inf") if soft == "unlimited" else float(soft))
    assert 3 <= fds <= value(m, "process_max_fds")

    cpu = value(m, "process_cpu_seconds_total")
    assert 0 <= cpu <= (time.time() - t0) * os.cpu_count() + 1
    for _ in range(20):
        k.list_streams()
    assert value(scrape(srv.endpoint), "process_cpu_seconds_total") >= cpu


def test_build_info_names_the_version(server_factory):
    version = subprocess.run([kinesin_bin(), "--version"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()[-1]
    srv = server_factory(ephemeral=True)
    srv.client().list_streams()  # API calls wait for recovery; /metrics answers 503 until then
    info = series(scrape(srv.endpoint), "kinesin_build_info")
    assert len(info) == 1, info
    labels, v = next(iter(info.items()))
    labels = dict(labels)
    assert v == 1
    assert labels["version"] == version
    assert re.fullmatch(r"[0-9a-f]{7,40}|unknown", labels["revision"]), labels
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*|unknown", labels["rustc_version"]), labels


# ------------------------------------------------------------------------------- dashboard

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                      # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                     # range selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", e):
        if m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names


def test_metric_name_extraction():
    assert metric_names(
        'histogram_quantile(0.99, sum by (operation, le) (rate(kinesin_request_duration_seconds_bucket'
        '{instance=~"$instance"}[$__rate_interval])))') == {"kinesin_request_duration_seconds_bucket"}
    assert metric_names('time() - process_start_time_seconds{a="b"}') == {"process_start_time_seconds"}
    assert metric_names("a_total / on (x) group_left b > 0") == {"a_total", "b"}


def dashboard_exprs(d):
    exprs = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
    for v in d["templating"]["list"]:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q or "")
        if m:
            exprs.append((f"variable {v['name']}", m.group(1)))
    return exprs


def test_dashboard_is_importable():
    d = json.loads(DASHBOARD.read_text())
    assert d["id"] is None and d["uid"] and d["title"] and d["schemaVersion"] >= 30
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys() and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        # The data source is the variable, never a uid of the machine it was exported from.
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
    titles = " | ".join(p["title"] for p in d["panels"]).lower()
    for want in ("requests", "error", "latency p50", "latency p99", "throttl", "incoming bytes",
                 "outgoing bytes", "incoming records", "outgoing records", "iterator age", "fsync",
                 "memory", "cpu", "file descriptors"):
        assert want in titles, want


def test_every_dashboard_metric_is_exported_and_documented(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0"])
    k = srv.client()
    name = unique_name("dash")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.put_record(StreamName=name, PartitionKey="k", Data=b"x")
    sid = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    k.get_records(ShardIterator=it)
    try:
        k.describe_stream_summary(StreamName=unique_name("missing"))
    except k.exceptions.ResourceNotFoundException:
        pass
    exported = {key[0] for key in scrape(srv.endpoint)}
    docs = DOCS.read_text()

    used = {}
    for where, expr in dashboard_exprs(json.loads(DASHBOARD.read_text())):
        names = metric_names(expr)
        assert names, (where, expr)
        for n in names:
            used.setdefault(n, where)
    missing = {n: where for n, where in used.items() if n not in exported}
    assert not missing, f"the dashboard queries metrics a server does not export: {missing}"
    for n in used:
        family = re.sub(r"_(bucket|sum|count)$", "", n)
        assert f"`{family}`" in docs, f"{family} (used by the dashboard) is not in docs/metrics.md"
