import os
import shutil
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import kutil
from kutil import Server, make_client, unique_name, wait_status


# KINESIN_STORAGE=memory runs every server of the suite with `--storage memory` (the variable is
# the flag's environment form, which each server inherits). Tests about what the data directory
# keeps (restarts, kill -9, a full disk, files on disk) do not apply there: skipped, by file or
# by test, with the reason.
MEMORY = os.environ.get("KINESIN_STORAGE") == "memory"
DISK_ONLY = {
    "test_persistence.py": "restarts and kill -9 on a data directory",
    "test_crash_loop.py": "kill -9 and recovery of a data directory",
    "test_disk_full.py": "a full disk under the data directory",
    "test_container.py": "the container image keeps its data in a volume",
    "test_format_fixtures.py": "opens committed data-directory fixtures",
    "test_acceptance.py::test_acceptance_10k_records_restart": "a restart keeps the data directory",
    "test_encryption.py::test_marker_is_encrypted_on_disk_and_read_back": "reads the segment files",
    "test_encryption.py::test_rotation_restart_and_disabled_key": "restarts on a data directory",
    "test_encryption.py::test_changed_ciphertext_is_detected_and_never_served": "changes the segment files",
    "test_startup.py::test_startup_log_names_api_console_and_data": "the log line names the data directory",
    "test_startup.py::test_data_dir_under_a_file_is_reported_as_data_dir": "the data directory is never used",
    "test_startup.py::test_read_only_data_dir_is_reported_as_data_dir": "the data directory is never used",
}


def pytest_collection_modifyitems(config, items):
    if not MEMORY:
        return
    for item in items:
        test = item.nodeid.split("/")[-1].split("[")[0]
        reason = DISK_ONLY.get(test.split("::")[0]) or DISK_ONLY.get(test)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"--storage memory: {reason}"))


@pytest.fixture(scope="session")
def log_dir():
    d = Path(tempfile.mkdtemp(prefix="kinesin-blackbox-logs-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server(log_dir):
    """One shared ephemeral server with instant state transitions."""
    srv = Server(
        ephemeral=True,
        # Rate limits off: the suite makes control-plane calls faster than AWS's per-account
        # rates (e.g. DescribeLimits 1/s) with retries disabled; limits are tested on dedicated
        # servers (test_limits*.py).
        args=["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0", "--limits", "off"],
        log_dir=log_dir,
    )
    srv.start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"session server exited with {rc} on SIGTERM:\n{srv.log_text()}"


@pytest.fixture(scope="session")
def kinesis(server):
    """boto3 client: no retries and no client-side validation, so the server's errors surface."""
    return make_client(server.endpoint)


@pytest.fixture(scope="session")
def raw(server):
    return server.raw()


@pytest.fixture
def server_factory(log_dir, tmp_path):
    """Start extra servers (own data dir or ephemeral); all are killed at teardown."""
    started = []

    def factory(data_dir=None, ephemeral=False, args=(), env=None, port=None, start=True):
        if data_dir is None and not ephemeral:
            data_dir = tmp_path / f"data-{len(started)}"
            data_dir.mkdir(exist_ok=True)
        # Limits off unless a test asks for them (`--limits aws`, which beats the environment):
        # these servers serve tests written before throughput limits existed.
        env = {"KINESIN_LIMITS": "off", **(env or {})}
        srv = Server(data_dir=data_dir, ephemeral=ephemeral, args=args, env=env, port=port, log_dir=log_dir)
        started.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for srv in started:
        srv.kill()


@pytest.fixture
def stream_name(kinesis):
    """A unique stream name; the stream (if created) is deleted at teardown."""
    name = unique_name("t")
    yield name
    _cleanup(kinesis, [name])


@pytest.fixture
def make_stream(kinesis):
    """Factory: create an ACTIVE stream and return its name; deleted at teardown."""
    names = []

    def make(shards=1, name=None, wait=True, **kwargs):
        name = name or unique_name("t")
        params = {"StreamName": name}
        if shards is not None:
            params["ShardCount"] = shards
        params.update(kwargs)
        kinesis.create_stream(**params)
        names.append(name)
        if wait:
            wait_status(kinesis, name)
        return name

    yield make
    _cleanup(kinesis, names)


def _cleanup(client, names):
    for name in names:
        try:
            client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        except ClientError:
            pass
        except Exception:
            pass


def pytest_report_header(config):
    return f"kinesin binary: {kutil.kinesin_bin()}"


@pytest.fixture(scope="session", autouse=True)
def early_tokens(server, kinesis):
    """Issued as the session starts, so test_zz_expiry.py can check 5-minute expiry at the end
    without a dedicated 5-minute wait."""
    import time as _time

    name = unique_name("expiry")
    out = {"issued": _time.time(), "stream": name, "iterator": None, "list_shards_token": None, "error": None}
    # Never let a broken server turn this autouse fixture into an error for every test.
    try:
        kinesis.create_stream(StreamName=name, ShardCount=2)
        wait_status(kinesis, name)
        kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"x")
        out["issued"] = _time.time()
        out["iterator"] = kinesis.get_shard_iterator(
            StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out["list_shards_token"] = kinesis.list_shards(StreamName=name, MaxResults=1).get("NextToken")
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)
    return out
