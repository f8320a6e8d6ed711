"""GET /metrics, /health/live, /health/ready and the JSON log format.

Pins: the metric names the web console charts (docs/metrics.md) and that they move as the
CloudWatch metrics they mirror do; shard-level series follow Enable/DisableEnhancedMonitoring;
a deleted stream's series disappear; the health endpoints answer GET without disturbing the
API's AWS-style errors on other paths; `--log-format json` writes one JSON object per line.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from kutil import b64, unique_name, wait_gone, wait_status

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http_get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def scrape(endpoint):
    """{(name, ((label, value), ...)): float}, checking the text format on the way."""
    status, headers, text = http_get(endpoint + "/metrics")
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    out = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"family {name} declared twice"
            typed.add(name)
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in out, f"duplicate series {key}"
        out[key] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def series(samples, name, **labels):
    """Every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def test_health_endpoints(server, raw):
    for path in ("/health/live", "/health/ready"):
        status, headers, body = http_get(server.endpoint + path)
        assert status == 200, (path, body)
        assert headers["Content-Type"].startswith("text/plain")
        status, _, body = http_get(server.endpoint + path, method="HEAD")
        assert status == 200 and body == ""
    # Other paths and methods still get the API's AWS-style answers.
    status, _, body = http_get(server.endpoint + "/")
    assert status == 403 and "AccessDeniedException" in body
    status, _, body = http_get(server.endpoint + "/health/other")
    assert status == 403 and "AccessDeniedException" in body
    r = raw.request("Kinesis_20131202.ListStreams", path="/metrics")
    assert r.status == 200, r


def test_put_and_get_move_the_stream_counters(server, kinesis, make_stream):
    name = make_stream(shards=2)
    kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"hello")  # 1 + 5 bytes
    kinesis.put_records(
        StreamName=name, Records=[{"PartitionKey": f"p{i}", "Data": b"x" * 10} for i in range(3)]
    )  # 3 * 12 bytes
    m = scrape(server.endpoint)
    s = {"stream_name": name}
    assert value(m, "kinesis_incoming_records_total", **s) == 4
    assert value(m, "kinesis_incoming_bytes_total", **s) == 6 + 36
    assert value(m, "kinesis_put_record_bytes_total", **s) == 6
    assert value(m, "kinesis_put_record_success_total", **s) == 1
    assert value(m, "kinesis_put_records_bytes_total", **s) == 36
    assert value(m, "kinesis_put_records_records_total", **s) == 3
    assert value(m, "kinesis_put_records_success_total", **s) == 1
    assert value(m, "kinesis_put_records_failed_records_total", **s) == 0
    assert value(m, "kinesis_put_records_throttled_records_total", **s) == 0
    assert value(m, "kinesis_write_provisioned_throughput_exceeded_total", **s) == 0
    assert value(m, "kinesis_put_record_latency_milliseconds_count", **s) == 1
    assert value(m, "kinesis_put_records_latency_milliseconds_count", **s) == 1
    assert value(m, "kinesis_put_record_latency_milliseconds_bucket", le="+Inf", **s) == 1
    assert value(m, "kinesis_put_record_latency_milliseconds_sum", **s) > 0
    assert value(m, "kinesis_get_records_success_total", **s) == 0

    got = 0
    for sh in kinesis.list_shards(StreamName=name)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=name, ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got += len(kinesis.get_records(ShardIterator=it)["Records"])
    assert got == 4
    m = scrape(server.endpoint)
    assert value(m, "kinesis_get_records_records_total", **s) == 4
    assert value(m, "kinesis_get_records_bytes_total", **s) == 42
    assert value(m, "kinesis_get_records_success_total", **s) == 2
    assert value(m, "kinesis_get_records_latency_milliseconds_count", **s) == 2
    assert value(m, "kinesis_get_records_iterator_age_milliseconds", **s) >= 0
    assert value(m, "kinesis_read_provisioned_throughput_exceeded_total", **s) == 0
    # Shard-level series only with enhanced monitoring.
    assert not series(m, "kinesis_incoming_bytes_total", stream_name=name).keys() - {
        (("stream_name", name),)
    }

    # Engine metrics (segment files written and synced: none with --storage memory).
    if os.environ.get("KINESIN_STORAGE") != "memory":
        assert value(m, "kinesin_fsync_latency_milliseconds_count") > 0
        assert value(m, "kinesin_segment_bytes_written_total") > 0
    assert value(m, "kinesin_streams") >= 1
    assert value(m, "kinesin_open_shards") >= 2
    assert value(m, "kinesin_http_connections") >= 1
    assert value(m, "kinesin_recovery_seconds") >= 0
    assert value(m, "kinesin_open_segment_files") >= 0


def test_enhanced_monitoring_adds_and_removes_shard_series(server, kinesis, make_stream):
    name = make_stream(shards=2)
    shard_ids = [sh["ShardId"] for sh in kinesis.list_shards(StreamName=name)["Shards"]]
    kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"abc")

    def shard_series(m, metric):
        return {dict(k)["shard_id"]: v for k, v in series(m, metric, stream_name=name).items()
                if "shard_id" in dict(k)}

    assert shard_series(scrape(server.endpoint), "kinesis_incoming_bytes_total") == {}
    kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    m = scrape(server.endpoint)
    per_shard = shard_series(m, "kinesis_incoming_bytes_total")
    assert sorted(per_shard) == sorted(shard_ids)
    assert sum(per_shard.values()) == value(m, "kinesis_incoming_bytes_total", stream_name=name) == 4
    assert shard_series(m, "kinesis_incoming_records_total") == {}
    assert shard_series(m, "kinesis_outgoing_bytes_total") == {}

    kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    m = scrape(server.endpoint)
    for metric in ("kinesis_incoming_bytes_total", "kinesis_incoming_records_total",
                   "kinesis_outgoing_bytes_total", "kinesis_outgoing_records_total",
                   "kinesis_write_provisioned_throughput_exceeded_total",
                   "kinesis_read_provisioned_throughput_exceeded_total",
                   "kinesis_iterator_age_milliseconds"):
        assert sorted(shard_series(m, metric)) == sorted(shard_ids), metric

    kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    m = scrape(server.endpoint)
    assert shard_series(m, "kinesis_incoming_bytes_total") == {}
    assert sorted(shard_series(m, "kinesis_incoming_records_total")) == sorted(shard_ids)
    kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    m = scrape(server.endpoint)
    assert not any("shard_id" in dict(k[1]) and dict(k[1]).get("stream_name") == name for k in m)


def test_deleted_stream_series_disappear(server, kinesis):
    name = unique_name("gone")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_status(kinesis, name)
    kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"abc")
    assert value(scrape(server.endpoint), "kinesis_incoming_records_total", stream_name=name) == 1
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    assert not any(dict(k[1]).get("stream_name") == name for k in scrape(server.endpoint))


def test_throttling_counts_and_json_logs(server_factory):
    srv = server_factory(ephemeral=True, args=["--limits", "aws", "--log-format", "json",
                                               "--create-stream-ms", "0"])
    k = srv.client()
    name = unique_name("thr")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    # 2 x 500 records of ~2 KiB: well over the shard's 1 MiB burst.
    failed = 0
    for _ in range(2):
        r = k.put_records(StreamName=name, Records=[
            {"PartitionKey": str(i), "Data": b"x" * 2000} for i in range(500)])
        failed += r["FailedRecordCount"]
    assert failed > 0
    sid = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
    read_throttled = 0
    for _ in range(8):
        try:
            it = k.get_records(ShardIterator=it)["NextShardIterator"]
        except k.exceptions.ProvisionedThroughputExceededException:
            read_throttled += 1
    assert read_throttled > 0
    m = scrape(srv.endpoint)
    s = {"stream_name": name}
    assert value(m, "kinesis_put_records_throttled_records_total", **s) == failed
    assert value(m, "kinesis_write_provisioned_throughput_exceeded_total", **s) == failed
    assert value(m, "kinesis_incoming_records_total", **s) == 1000 - failed
    assert value(m, "kinesis_read_provisioned_throughput_exceeded_total", **s) == read_throttled

    # One summary line per stream per 10 s, never one per record.
    deadline = time.time() + 15
    while time.time() < deadline and "throughput exceeded" not in srv.log_path.read_text():
        time.sleep(0.5)
    lines = [ln for ln in srv.log_path.read_text().splitlines() if ln.strip()]
    events = [json.loads(ln) for ln in lines]  # every line is one JSON object
    for e in events:
        assert {"timestamp", "level", "message", "target"} <= e.keys(), e
    messages = [e["message"] for e in events]
    assert any(m.startswith("kinesin listening on http://") for m in messages), messages
    start = next(e for e in events if e["message"].startswith("kinesin listening on http://"))
    assert start["listen"] == srv.endpoint and "data_dir" in start
    assert any(m.startswith("recovered ") for m in messages), messages
    assert any(m.startswith("kinesin ready") for m in messages), messages
    assert any(e["message"] == "stream created" and e.get("stream") == name for e in events)
    throttle = [e for e in events if "throughput exceeded" in e["message"]]
    assert len(throttle) == 1, throttle
    assert throttle[0]["stream"] == name
    assert throttle[0]["write_throttled_records"] == failed
    assert throttle[0]["read_throttled_calls"] == read_throttled


def test_bad_log_format_is_refused(server_factory):
    srv = server_factory(ephemeral=True, args=["--log-format", "xml"], start=False)
    with pytest.raises(RuntimeError, match="expected `text` or `json`"):
        srv.start()
