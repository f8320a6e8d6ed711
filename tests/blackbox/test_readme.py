"""README.md's Quick start, run as written, so that it cannot rot.

The fenced blocks of the README's "## Quick start" section are each marked by an HTML comment on
the line before them, `<!-- quickstart: KIND -->`:

- `server`: the `serve` command;
- `shell`: shell lines for every AWS CLI; `shell aws-cli-v1` / `shell aws-cli-v2`: lines for one
  major version of the AWS CLI only;
- `python`: a boto3 script.

Each test follows the page in order as a user would, in one terminal for the shell lines: the
server, then every `shell` block and the blocks of one CLI version concatenated into one bash
script (`bash -euo pipefail`, so a failing line fails the test), then the Python block, all against
the same server. Then it checks the effects: the record the CLI put reads back as b"hello", the
Python block printed b'hello', its waiter returned without sleeping, nothing failed.

Substitutions, and nothing else is changed:
- `cargo run --release -p kinesin --` becomes $KINESIN_BIN (the suite runs the built binary, it
  does not build);
- the server runs in a fresh temporary directory, so its default data dir `./kinesin-data` is a
  temporary one;
- the default address `127.0.0.1:4567` becomes a free port (KINESIN_LISTEN for the server, the
  same text replaced in the other blocks), so the test never collides with a kinesin a developer
  runs on the default port. test_readme_default_address_is_the_servers checks that the README's
  address is the server's default.

The AWS CLI v1 is the venv's `aws` (pinned in requirements.txt); the AWS CLI v2 is the first
`aws` of version 2 found on PATH or in /usr/bin, /usr/local/bin (Debian's `awscli` package,
which scripts/test installs) or $AWS_CLI_V2; without one its test is skipped, saying so. Both run
with an empty AWS configuration (AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE pointing at
missing files), so a developer's ~/.aws cannot change what is tested.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import kutil

README = kutil.REPO / "README.md"
DEFAULT_ADDR = "127.0.0.1:4567"
CARGO_RUN = "cargo run --release -p kinesin --"
KINDS = {"server", "shell", "shell aws-cli-v1", "shell aws-cli-v2", "python"}
FENCE_LANG = {"server": "sh", "shell": "sh", "shell aws-cli-v1": "sh", "shell aws-cli-v2": "sh", "python": "python"}
MARKED_BLOCK = re.compile(r"<!--\s*quickstart:\s*([a-z0-9 -]+?)\s*-->\n```([a-z]*)\n(.*?)\n```", re.S)
# boto3's stream_exists waiter polls at once, then every 10 s: a Python block that takes longer
# than this waited for a stream still CREATING.
WAITER_BOUND_S = 8.0


def quickstart_section():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Quick start' section followed by another '## ' section"
    return m.group(1)


def quickstart_blocks():
    """[(kind, code)] in document order; every fenced block of the section must be marked."""
    section = quickstart_section()
    blocks = []
    for kind, lang, code in MARKED_BLOCK.findall(section):
        assert kind in KINDS, f"unknown quickstart marker {kind!r} (known: {sorted(KINDS)})"
        assert lang == FENCE_LANG[kind], f"quickstart block {kind!r} is fenced as {lang!r}, expected {FENCE_LANG[kind]!r}"
        blocks.append((kind, code))
    fence_lines = re.findall(r"^```", section, re.M)
    assert len(fence_lines) % 2 == 0, "unbalanced ``` fences in the Quick start"
    assert len(fence_lines) // 2 == len(blocks), (
        f"the Quick start has {len(fence_lines) // 2} fenced blocks but {len(blocks)} carry a "
        "`<!-- quickstart: KIND -->` marker on the line before them: mark every block so this test runs it"
    )
    return blocks


def aws_version(path):
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout + out.stderr).strip()


def aws_cli_v1():
    path = Path(sys.executable).parent / "aws"
    version = aws_version(path) if path.exists() else ""
    assert version.startswith("aws-cli/1."), (
        f"the AWS CLI v1 is expected at {path} (the venv's, from tests/blackbox/requirements.txt); got {version!r}"
    )
    return path


def aws_cli_v2():
    candidates = []
    if os.environ.get("AWS_CLI_V2"):
        candidates.append(os.environ["AWS_CLI_V2"])
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]:
        if d:
            candidates.append(os.path.join(d, "aws"))
    seen = set()
    for c in candidates:
        if c in seen or not os.path.isfile(c) or not os.access(c, os.X_OK):
            continue
        seen.add(c)
        if aws_version(c).startswith("aws-cli/2."):
            return Path(c)
    return None


def clean_env(tmp):
    """The environment of a user's fresh terminal: no AWS or kinesin settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KINESIN_"))}
    env["AWS_CONFIG_FILE"] = str(tmp / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp / "no-aws-credentials")
    return env


class QuickstartServer:
    """The README's `serve` block, started as the README says (see the module's substitutions)."""

    def __init__(self, code, workdir, port, env):
        lines = [ln for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) == 1, f"the quickstart server block should hold one command, got {lines!r}"
        line = lines[0].split("#", 1)[0].strip()
        assert line.startswith(CARGO_RUN + " "), f"the quickstart server block should run `{CARGO_RUN} ...`, got {line!r}"
        self.argv = [kutil.kinesin_bin()] + shlex.split(line[len(CARGO_RUN):])
        self.workdir = workdir
        self.port = port
        self.env = {**env, "KINESIN_LISTEN": f"127.0.0.1:{port}"}
        self.log_path = workdir / "server.log"
        self.proc = None

    def start(self, timeout=30.0):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"`{shlex.join(self.argv)}` exited with {self.proc.returncode}:\n{self.log()}"
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"`{shlex.join(self.argv)}` not ready within {timeout}s:\n{self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode if self.proc else None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def json_documents(text):
    """The JSON documents printed one after another (the AWS CLI's default output)."""
    dec = json.JSONDecoder()
    docs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        try:
            doc, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            # A plain-text line (e.g. `--output text`): skip it.
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl + 1
            continue
        docs.append(doc)


def all_records(client, stream):
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        for r in client.get_records(ShardIterator=it)["Records"]:
            out.append((shard["ShardId"], r["PartitionKey"], r["Data"]))
    return out


def run_quickstart(tmp_path, cli_version, aws_path):
    blocks = quickstart_blocks()
    kinds = [k for k, _ in blocks]
    assert kinds.count("server") == 1 and kinds[0] == "server", f"the Quick start should start with one server block: {kinds}"
    assert kinds.count("python") == 1 and kinds[-1] == "python", f"the Quick start should end with one python block: {kinds}"
    for v in ("aws-cli-v1", "aws-cli-v2"):
        assert f"shell {v}" in kinds, f"the Quick start has no `shell {v}` block: {kinds}"

    port = kutil.free_port()
    endpoint = f"http://127.0.0.1:{port}"

    def localize(code):
        for url in re.findall(r"https?://[^\s\"')]+", code):
            assert url == f"http://{DEFAULT_ADDR}", f"a quickstart block uses the endpoint {url!r}, expected http://{DEFAULT_ADDR}"
        return code.replace(DEFAULT_ADDR, f"127.0.0.1:{port}")

    workdir = tmp_path / "quickstart"
    workdir.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "aws").symlink_to(aws_path)
    env = clean_env(tmp_path)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"

    shell = "\n".join(localize(code) for kind, code in blocks if kind in ("shell", f"shell aws-cli-{cli_version}"))
    python = localize(blocks[-1][1])

    server = QuickstartServer(blocks[0][1], workdir, port, env)
    try:
        server.start()
        sh = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", shell], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert sh.returncode == 0, (
            f"the Quick start's shell lines failed with AWS CLI {cli_version} ({aws_version(aws_path)}), exit "
            f"{sh.returncode}\n--- script:\n{shell}\n--- stdout:\n{sh.stdout}\n--- stderr:\n{sh.stderr}\n--- server log:\n{server.log()}"
        )
        # What the CLI printed: get-records' answer holds the record, base64 in JSON.
        printed = [d for d in json_documents(sh.stdout) if isinstance(d, dict) and "Records" in d]
        assert printed, f"no get-records output in the shell lines' stdout:\n{sh.stdout}"
        assert [r["Data"] for r in printed[-1]["Records"]] == ["aGVsbG8="], printed[-1]
        # What the server stored: exactly the bytes `hello` (AWS CLI v1 given `--data aGVsbG8=`
        # stores the eight base64 characters instead).
        client = kutil.make_client(endpoint)
        assert [(pk, data) for _, pk, data in all_records(client, "orders")] == [("u1", b"hello")]

        t0 = time.monotonic()
        py = subprocess.run(
            [sys.executable, "-c", python], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
        )
        elapsed = time.monotonic() - t0
        assert py.returncode == 0, (
            f"the Quick start's Python block failed (run after the shell lines, as the page reads):\n"
            f"--- code:\n{python}\n--- stderr:\n{py.stderr}\n--- server log:\n{server.log()}"
        )
        assert py.stdout.strip() == "b'hello'", py.stdout
        assert elapsed < WAITER_BOUND_S, (
            f"the Python block took {elapsed:.1f}s: boto3's stream_exists waiter found the new stream still "
            "CREATING and slept 10 s (a new stream should be ACTIVE at once by default)"
        )
        stored = all_records(client, "clicks")
        assert [(pk, data) for _, pk, data in stored] == [("u1", b"hello")]
    finally:
        rc = server.stop()
    assert rc == 0, f"the quickstart server exited with {rc} on SIGTERM:\n{server.log()}"
    assert (workdir / "kinesin-data").is_dir(), "the server did not keep its data in ./kinesin-data as the README says"


def test_readme_quickstart_blocks_are_marked():
    """Every fenced block of the Quick start is marked, and every kind is there."""
    kinds = [k for k, _ in quickstart_blocks()]
    assert set(kinds) == KINDS, kinds


def test_readme_default_address_is_the_servers():
    """The blocks say http://127.0.0.1:4567 and the test moves them to a free port: check that the
    address is the one `serve` listens on by default, so the substitution changes nothing."""
    out = subprocess.run([kutil.kinesin_bin(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    listen = re.search(r"--listen[^\n]*(?:\n(?!\s*-)[^\n]*)*", out.stdout)
    assert listen and DEFAULT_ADDR in listen.group(0), f"`serve --help` does not give {DEFAULT_ADDR} as --listen's default:\n{out.stdout}"


def test_readme_quickstart_aws_cli_v1(tmp_path):
    run_quickstart(tmp_path, "v1", aws_cli_v1())


def test_readme_quickstart_aws_cli_v2(tmp_path):
    path = aws_cli_v2()
    if path is None:
        pytest.skip(
            "no AWS CLI v2 found (an `aws` whose --version says aws-cli/2 on PATH, in /usr/bin or /usr/local/bin, "
            "or $AWS_CLI_V2): install Debian's `awscli` package (scripts/test does when run as root)"
        )
    run_quickstart(tmp_path, "v2", path)
