"""contrib/kinesin.service, the systemd unit: valid for systemd, hardened, and running the
binary with the data dir of its StateDirectory.

`systemd-analyze verify` checks the unit's syntax and its ExecStart binary (the unit's
/usr/local/bin/kinesin is swapped for the binary under test); `systemd-analyze security
--offline` rates its sandboxing. Skipped where systemd-analyze is missing.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kutil import kinesin_bin

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "kinesin.service"


def _settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_expected_settings():
    s = _settings(UNIT.read_text())
    assert s["DynamicUser"] == ["yes"]
    assert s["StateDirectory"] == ["kinesin"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["LimitNOFILE"][0]) >= 65536
    assert s["NoNewPrivileges"] == ["yes"]
    (exec_start,) = s["ExecStart"]
    assert re.fullmatch(r"/usr/local/bin/kinesin serve --data-dir \$\{STATE_DIRECTORY\}", exec_start), exec_start
    assert s["WantedBy"] == ["multi-user.target"]


@pytest.fixture
def unit_under_test(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    path = tmp_path / "kinesin.service"
    path.write_text(UNIT.read_text().replace("/usr/local/bin/kinesin", kinesin_bin()))
    return path


def test_systemd_analyze_verify(unit_under_test):
    p = subprocess.run(["systemd-analyze", "verify", str(unit_under_test)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    # Warnings about the unit itself (unknown keys, bad values) go to stderr with its name.
    assert "kinesin.service" not in p.stderr, p.stderr


def test_systemd_analyze_security(unit_under_test):
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_under_test)],
                       capture_output=True, text=True, timeout=60)
    if "--offline" in p.stderr and "unrecognized" in p.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    m = re.search(r"Overall exposure level for kinesin\.service: ([0-9.]+) (\w+)", p.stdout)
    assert m, p.stdout + p.stderr
    # 0 (fully sandboxed) .. 10 (unprotected); "OK" is below 2 in systemd's scale.
    assert float(m.group(1)) <= 2.0, p.stdout


def test_the_binary_accepts_the_units_command_line(tmp_path):
    """The flags of ExecStart exist (`serve --data-dir` parses; `--help` stops before serving)."""
    p = subprocess.run([kinesin_bin(), "serve", "--data-dir", str(tmp_path), "--help"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and "--data-dir" in p.stdout, p.stderr
