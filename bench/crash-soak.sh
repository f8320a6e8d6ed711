#!/usr/bin/env bash
# Long crash soak: the real-process kill -9 loop of tests/blackbox/test_crash_loop.py with many
# more cycles (default 500, about 8 minutes). Replay a failure with the seed it prints:
#   KINESIN_CRASH_SEED=<seed> bash bench/crash-soak.sh
#   KINESIN_CRASH_CYCLES=2000 bash bench/crash-soak.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ -z "${KINESIN_BIN:-}" ]; then
    cargo build --release -p kinesin
    export KINESIN_BIN="$PWD/target/release/kinesin"
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/blackbox/requirements.txt
export KINESIN_CRASH_CYCLES="${KINESIN_CRASH_CYCLES:-500}"
exec .venv/bin/python -m pytest tests/blackbox/test_crash_loop.py -p no:cacheprovider -q -s -rfE
