"""Start-up as a new user meets it (issue 13): the log says where the API, the console and the
data are; a data directory kinesin cannot write is reported as such, naming --data-dir (it used
to surface as a KMS keyring error), and a missing --credentials file names the flag and the
path. Each error exits non-zero before listening."""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kutil import free_port, kinesin_bin


def run_serve(*args, user=None, timeout=30):
    return subprocess.run(
        [kinesin_bin(), "serve", "--listen", "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, user=user,
    )


def test_startup_log_names_api_console_and_data(server_factory, tmp_path):
    data = tmp_path / "data"
    srv = server_factory(data_dir=data, args=["--tls-listen", "127.0.0.1:0"])
    deadline = time.time() + 10
    while time.time() < deadline and "kinesin ready" not in srv.log_text():
        time.sleep(0.05)
    log = srv.log_text()
    api = srv.endpoint
    assert f"kinesin listening on {api} (console {api}/console/), data in {data}" in log, log
    tls = re.search(r"kinesin listening on (https://127\.0\.0\.1:\d+) \(console \1/console/\)", log)
    assert tls, log


def test_wildcard_listen_address_is_shown_as_loopback(server_factory):
    srv = server_factory(ephemeral=True, env={"KINESIN_LISTEN": f"0.0.0.0:{free_port()}"})
    deadline = time.time() + 10
    while time.time() < deadline and "kinesin ready" not in srv.log_text():
        time.sleep(0.05)
    assert f"kinesin listening on http://127.0.0.1:{srv.port} (console http://127.0.0.1:{srv.port}/console/)" in srv.log_text()


def test_data_dir_under_a_file_is_reported_as_data_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = blocker / "data"
    r = run_serve("--data-dir", str(bad))
    assert r.returncode != 0
    assert f"--data-dir {bad}: cannot create the directory" in r.stderr, r.stderr
    assert "keyring" not in r.stderr.lower() and "kms" not in r.stderr.lower(), r.stderr
    assert "listening" not in r.stderr


def test_read_only_data_dir_is_reported_as_data_dir():
    # Not under pytest's tmp_path: its parent is private to the user running the tests.
    base = Path(tempfile.mkdtemp(prefix="kinesin-ro-"))
    base.chmod(0o755)
    data = base / "ro"
    data.mkdir()
    data.chmod(0o555)
    # root writes anywhere: run the server as nobody, who may run the binary but not write here.
    user = 65534 if os.geteuid() == 0 else None
    try:
        r = run_serve("--data-dir", str(data), user=user)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert r.returncode != 0
    assert f"--data-dir {data}: kinesin cannot write in it" in r.stderr, r.stderr
    assert "Permission denied" in r.stderr, r.stderr
    assert "keyring" not in r.stderr.lower(), r.stderr


def test_missing_credentials_file_names_the_flag(tmp_path):
    missing = tmp_path / "nope" / "credentials.toml"
    r = run_serve("--ephemeral", "--credentials", str(missing))
    assert r.returncode != 0
    assert f"--credentials {missing}: cannot read" in r.stderr, r.stderr
    assert "No such file or directory" in r.stderr


def test_zero_connections_per_ip_is_refused():
    r = run_serve("--ephemeral", "--max-connections-per-ip", "0")
    assert r.returncode != 0 and "--max-connections-per-ip 0" in r.stderr


def test_malformed_credentials_file_names_the_flag_once(tmp_path):
    bad = tmp_path / "credentials.toml"
    bad.write_text("[[principal]\nnot toml")
    r = run_serve("--ephemeral", "--credentials", str(bad))
    assert r.returncode != 0
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("Error:"))
    assert line.startswith(f"Error: --credentials {bad}: "), line
    assert line.count(str(bad)) == 1, line
