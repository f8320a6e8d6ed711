#!/usr/bin/env bash
# The web console suite on its own: headless Chromium (the system's, installed with apt when
# missing and running as root; npm never downloads a browser) driving /console of the release
# binary. Prints `console: N passed, M failed`; exits non-zero on any failure.
#   KINESIN_BIN  binary to test (default target/release/kinesin)
#   CHROMIUM     browser to launch (default: chromium on PATH)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$(cd ../.. && pwd)"
export KINESIN_BIN="${KINESIN_BIN:-$ROOT/target/release/kinesin}"

if [ ! -x "$KINESIN_BIN" ]; then
    echo "--- $KINESIN_BIN not found: run cargo build --release -p kinesin first"
    echo "console: 0 passed, 1 failed"
    exit 1
fi
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$CHROMIUM" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || true
    CHROMIUM="$(command -v chromium || true)"
fi
if [ -z "$CHROMIUM" ] || ! command -v npm >/dev/null 2>&1; then
    echo "--- chromium and node/npm (Node 20+) are needed"
    echo "console: 0 passed, 1 failed"
    exit 1
fi
export CHROMIUM

npm ci --silent --no-audit --no-fund >/dev/null
tap="$(mktemp -t kinesin-console-XXXXXX.tap)"
trap 'rm -f "$tap"' EXIT
set +e
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" console.test.mjs
rc=$?
set -e
awk '/^# pass /{p=$3} /^# fail /{f=$3} END{printf "console: %d passed, %d failed\n", p, f}' "$tap"
echo "(screenshots in tests/console/artifacts)"
exit "$rc"
