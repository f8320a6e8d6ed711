"""The Dockerfile, built and run with podman (Debian's package).

No container registry is reachable from the machines this suite runs on (only package
registries), so neither the Rust build image nor debian:bookworm-slim can be pulled. What does
work: a Debian bookworm base made with `debootstrap --variant=minbase` from Debian's packages
and `podman import`-ed (kept in podman's storage for later runs), and the Dockerfile's runtime
stage built on it with the binary under test (`--build-arg KINESIN_BINARY_FROM=prebuilt
--build-arg RUNTIME_IMAGE=<that base>`). The builder stage (a Rust 1.95 image) is what cannot
be exercised here. The test then runs the image: the health check (`kinesin health`) passes,
the API answers from the container, the server runs as the unprivileged user and writes into the
volume, and `podman stop` ends it with status 0.

Skipped, with the reason, where podman or debootstrap is missing or podman cannot run a
container. On this kind of machine crun refuses the hybrid cgroup layout (v1 and v2 both
mounted) and the sandbox forbids raising rlimits, hence `--runtime runc` (when installed) and
explicit `--ulimit`s.
"""

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from kutil import free_port, kinesin_bin, make_client

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/kinesin-test-base:bookworm"
IMAGE = "localhost/kinesin-test:latest"
# Limits at or under the sandbox's hard ones: podman's defaults (1048576 files) cannot be set here.
ULIMITS = ["--ulimit", "nofile=8192:8192", "--ulimit", "nproc=4096:4096"]


def _podman(*args, timeout=120, check=True):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"podman {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def podman():
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install podman runc debootstrap)")
    runtime = ["--runtime", "runc"] if shutil.which("runc") else []
    if _podman("image", "exists", BASE, check=False).returncode != 0:
        if shutil.which("debootstrap") is None:
            pytest.skip(f"no base image {BASE} and no debootstrap to make one (apt-get install debootstrap)")
        with tempfile.TemporaryDirectory(prefix="kinesin-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs)],
                               capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                pytest.skip(f"debootstrap could not make a bookworm base: {p.stderr.strip()[-500:]}")
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run(["podman", "import", "-", BASE], stdin=tar.stdout, capture_output=True,
                                 text=True, timeout=300)
            tar.stdout.close()
            tar.wait()
            assert imp.returncode == 0, imp.stderr
    probe = _podman("run", "--rm", *runtime, *ULIMITS, "--network", "host", BASE, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container on this machine: {probe.stderr.strip()[-500:]}")
    return runtime


def _dangling():
    return set(_podman("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split())


@pytest.fixture(scope="module")
def image(podman):
    before = _dangling()
    with tempfile.TemporaryDirectory(prefix="kinesin-image-") as ctx:
        shutil.copy2(kinesin_bin(), Path(ctx) / "kinesin")
        _podman("build", *podman, *ULIMITS, "--format", "docker", "-f", str(ROOT / "Dockerfile"),
                "--build-arg", "KINESIN_BINARY_FROM=prebuilt", "--build-arg", f"RUNTIME_IMAGE={BASE}",
                "-t", IMAGE, ctx, timeout=600)
    yield IMAGE
    # The image and the stage images this build left (each holds a copy of the binary); the
    # base image stays for the next run.
    _podman("rmi", "-f", IMAGE, check=False)
    left = _dangling() - before
    if left:
        _podman("rmi", "-f", *left, check=False)


def test_image_settings(image):
    (info,) = json.loads(_podman("image", "inspect", image).stdout)
    cfg = info["Config"]
    assert cfg["User"] == "kinesin"
    assert "/var/lib/kinesin" in cfg["Volumes"]
    assert "4567/tcp" in cfg["ExposedPorts"]
    assert cfg["Entrypoint"] == ["kinesin"] and cfg["Cmd"] == ["serve"]
    assert "KINESIN_DATA_DIR=/var/lib/kinesin" in cfg["Env"]
    assert "KINESIN_LISTEN=0.0.0.0:4567" in cfg["Env"]
    health = info.get("Healthcheck") or cfg.get("Healthcheck")
    assert health and health["Test"][:3] == ["CMD", "kinesin", "health"], info


def test_container_runs_healthy_and_serves(podman, image):
    name = f"kinesin-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    # Host networking: no port forwarding (netavark, iptables) needed; the server listens on a
    # free loopback port through the image's KINESIN_LISTEN, which `kinesin health` follows too.
    _podman("run", "-d", *podman, *ULIMITS, "--network", "host", "--name", name,
            "-e", f"KINESIN_LISTEN=127.0.0.1:{port}", "-e", "KINESIN_CREATE_STREAM_MS=0", image)
    try:
        deadline = time.time() + 60
        while True:
            hc = _podman("healthcheck", "run", name, check=False)
            if hc.returncode == 0:
                break
            state = _podman("inspect", name, "--format", "{{.State.Status}}").stdout.strip()
            assert state == "running", f"container {state}:\n" + _podman("logs", name).stderr
            assert time.time() < deadline, f"never healthy: {hc.stdout}{hc.stderr}\n" + _podman("logs", name).stderr
            time.sleep(0.2)
        assert requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code == 200

        kinesis = make_client(f"http://127.0.0.1:{port}")
        kinesis.create_stream(StreamName="in-container", ShardCount=1)
        deadline = time.time() + 30
        while kinesis.describe_stream_summary(StreamName="in-container")[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            assert time.time() < deadline
            time.sleep(0.05)
        put = kinesis.put_record(StreamName="in-container", Data=b"hello from a container", PartitionKey="k")
        it = kinesis.get_shard_iterator(StreamName="in-container", ShardId=put["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == [b"hello from a container"]

        # Unprivileged, and the data is in the volume.
        assert _podman("exec", name, "id", "-u").stdout.strip() == "10001"
        assert _podman("exec", name, "id", "-un").stdout.strip() == "kinesin"
        listing = _podman("exec", name, "ls", "-A", "/var/lib/kinesin").stdout.split()
        assert listing, "nothing written to the data volume"
        mounts = json.loads(_podman("inspect", name).stdout)[0]["Mounts"]
        assert any(m["Destination"] == "/var/lib/kinesin" for m in mounts), mounts

        # `podman stop` (SIGTERM): a clean shutdown, status 0.
        _podman("stop", "-t", "20", name, timeout=60)
        assert _podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip() == "0", \
            _podman("logs", name).stderr
    finally:
        _podman("rm", "-f", "-v", name, check=False)
